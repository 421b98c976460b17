"""Elements without a home in the other version, carried in the official cross-version
extensions (`http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchStudy.recruitment`
in R4, `.../4.0/...` in R5) and taken out of them again.

An element whose type the host version's Extension.value[x] can hold becomes `value<Type>`;
any other (backbone elements, types the host lacks) a complex extension with one
sub-extension per child, named after the child, recursively; a repeating element one
extension per item. The element's types come from its own version's schema, so the same
code packs and unpacks every element of every type.
"""

from __future__ import annotations

from typing import Any

from ...validation import FhirVersion
from .schema import choice_base, element_type, is_primitive, repeats, value_key, xver_prefix


class NotRepresentable(ValueError):
    """An element that neither the other version nor its extensions can hold."""

    def __init__(self, element: str, why: str) -> None:
        super().__init__(f"{element}: {why}")
        self.element = element


def pack(value: Any, type_name: str | None, source: FhirVersion, host: FhirVersion,
         url: str, path: str) -> list[dict[str, Any]]:
    """The extensions (one per item) that carry `value`, an element of `source` of type
    `type_name`, in a resource of version `host`."""
    items = value if isinstance(value, list) else [value]
    return [_one(item, type_name, source, host, url, path) for item in items]


def _one(value: Any, type_name: str | None, source: FhirVersion, host: FhirVersion, url: str,
         path: str) -> dict[str, Any]:
    if type_name is None:
        raise NotRepresentable(path, "its type is unknown")
    key = value_key(host, type_name)
    if key and not (type_name == "Extension"):
        return {"url": url, key: value}
    if is_primitive(type_name) or not isinstance(value, dict):
        raise NotRepresentable(path, f"FHIR {host} extensions cannot hold a {type_name}")
    subs: list[dict[str, Any]] = []
    for child, item in value.items():
        if child == "extension":
            subs.extend(item)  # the element's own extensions (absolute urls) stay with it
        elif child.startswith("_") or child == "modifierExtension":
            raise NotRepresentable(f"{path}.{child}", "extensions on the primitive values "
                                   "of an element without a home are not carried")
        else:
            base = choice_base(source, type_name, child)
            subs += pack(item, element_type(source, type_name, child), source, host, base,
                         f"{path}.{base}")
    return {"url": url, "extension": subs}


def unpack(ext: dict[str, Any], type_name: str | None, version: FhirVersion, key: str
           ) -> tuple[str, Any]:
    """(JSON key, value) of an element of `version` from its extension: `key` is the
    element's name (a choice element's key gets the type of its value)."""
    values = [k for k in ext if k.startswith("value")]
    if values:
        vkey = values[0]
        suffix = vkey[len("value"):]
        if type_name is None:  # a choice element: occurrence + DateTime
            return key + suffix, ext[vkey]
        return key, ext[vkey]
    if type_name is None:
        raise NotRepresentable(key, "a complex extension for an element of unknown type")
    out: dict[str, Any] = {}
    for sub in ext.get("extension", []):
        child = sub.get("url", "")
        if "/" in child or ":" in child:  # the element's own extension
            out.setdefault("extension", []).append(sub)
            continue
        ckey, cvalue = unpack(sub, element_type(version, type_name, child), version, child)
        if repeats(version, type_name, ckey):
            out.setdefault(ckey, []).append(cvalue)
        else:
            out[ckey] = cvalue
    return key, out


def restore(obj: dict[str, Any], owner: str | None, version: FhirVersion, path: str) -> None:
    """Take the cross-version extensions for elements of `version` on `obj` (an element
    at `path`, of type `owner` in `version`) back into elements, under '\\0key': the rules
    tell them from the source version's own elements, then they settle under `key`."""
    exts = obj.get("extension")
    if not isinstance(exts, list):
        return
    stem = xver_prefix(version) + path + "."
    kept, found = [], []
    for ext in exts:
        url = ext.get("url", "") if isinstance(ext, dict) else ""
        name = url[len(stem):] if url.startswith(stem) else ""
        if name and "." not in name:
            found.append((name, ext))
        else:
            kept.append(ext)
    if not found:
        return
    restored: dict[str, Any] = {}
    for name, ext in found:
        key, value = unpack(ext, element_type(version, owner, name), version, name)
        if repeats(version, owner, key):
            restored.setdefault(key, []).append(value)
        else:
            restored[key] = value
    if kept:
        obj["extension"] = kept
    else:
        obj.pop("extension")
    for key, value in restored.items():
        obj["\0" + key] = value
