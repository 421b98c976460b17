"""R4 <-> R5 conversion of resources a client writes, so that every resource reads and
searches in both versions (the mappings make both themselves; this is for client data).

    convert(resource, "R4", "R5")  -> the R5 resource (NotRepresentable names the element
                                      that cannot be carried)

Passes over a copy:
0. placeholders (data-absent-reason in a required element, made by an earlier conversion)
   are taken out;
1. restore: cross-version extensions for elements of the target version (put there by an
   earlier conversion, or by our mappings) become those elements again;
2. rules (rules.json, rules.py): the structural changes of the resource type;
3. carry: every element is checked against the target version's schema: same name and
   type -> kept (its children checked in turn); a list where the target has a single
   element (or the reverse) -> converted when one item; anything else -> the official
   cross-version extension (`http://hl7.org/fhir/<source release>/StructureDefinition/
   extension-<path>`) on its parent;
4. fill: a required element the target still lacks (its value went to an extension) gets a
   data-absent-reason placeholder (placeholders.py).
R4 -> R5 -> R4 gives the resource back (tests/test_xversion.py: hypothesis, the official
examples, our goldens); `convert_checked` proves it for each write.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from ...errors import Issue
from ...store.canonical import dumps, loads
from ...validation import FhirVersion, resource_types, validate
from . import placeholders, rules
from .extensions import NotRepresentable, pack, restore
from .schema import (
    LOOKUPS,
    choice_base,
    codes,
    element_type,
    is_backbone,
    is_primitive,
    properties,
    repeats,
    xver_prefix,
)

__all__ = ["NotRepresentable", "convert", "convert_checked", "equivalent"]
_PASS = ("resourceType", "extension", "modifierExtension")


def _map_path(path: str, table: dict[str, str]) -> str:
    """A path in one version -> the other's, by the renames (longest prefix first)."""
    steps = path.split(".")
    for n in range(len(steps), 1, -1):
        head = ".".join(steps[:n])
        if head in table:
            return ".".join([table[head], *steps[n:]])
    return path


@lru_cache(maxsize=LOOKUPS)
def _owner(version: FhirVersion, path: str) -> str | None:
    steps = path.split(".")
    owner: str | None = steps[0]
    for step in steps[1:]:
        owner = element_type(version, owner, step) if owner else None
    return owner


def _restore_all(obj: Any, path: str, source: FhirVersion, target: FhirVersion,
                 to_target: dict[str, str]) -> None:
    if isinstance(obj, list):
        for item in obj:
            _restore_all(item, path, source, target, to_target)
        return
    if not isinstance(obj, dict):
        return
    target_path = _map_path(path, to_target)
    restore(obj, _owner(target, target_path), target, target_path)
    for key, value in list(obj.items()):
        if key not in _PASS and key != "contained" and isinstance(value, (dict, list)):
            _restore_all(value, f"{path}.{key}", source, target, to_target)


def _settle(obj: Any, native: set[tuple[int, str]]) -> None:
    """Restored elements the rules left alone take their own keys (where still free); they
    are the target's own, recorded in `native` (not checked again)."""
    if isinstance(obj, list):
        for item in obj:
            _settle(item, native)
        return
    if not isinstance(obj, dict):
        return
    for key in [k for k in obj if k.startswith(rules.RESTORED)]:
        if key[1:] not in obj:
            obj[key[1:]] = obj.pop(key)
            native.add((id(obj), key[1:]))
    for key, value in obj.items():
        if key not in _PASS and isinstance(value, (dict, list)) and (id(obj), key) not in native:
            _settle(value, native)


def _unrenamed(value: Any, path: str, to_source: dict[str, str]) -> Any:
    """A value about to be packed for its source version, with the keys rules renamed inside
    it given their source names again."""
    if isinstance(value, list):
        return [_unrenamed(v, path, to_source) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        source = to_source.get(f"{path}.{key}", f"{path}.{key}").rsplit(".", 1)[1]
        out[source] = _unrenamed(item, f"{path}.{key}", to_source)
    return out


def _carry(obj: dict[str, Any], path: str, owner: str | None, source_owner: str | None,
           source_path: str, source: FhirVersion, target: FhirVersion,
           to_source: dict[str, str], retyped: frozenset[str],
           native: set[tuple[int, str]]) -> None:
    """Check `obj` (an element of type `owner` in `target`) key by key; pack what has no
    home into extensions on `obj`."""
    homeless: list[tuple[str, str, Any]] = []  # (source name, key in obj, value)
    props = properties(target, owner) if owner else {}
    for key in [k for k in obj if k.startswith(rules.RESTORED) and k[1:] in obj]:
        # R4 0..1 -> R5 0..*: the first item in the element, the others from its extension
        if repeats(target, owner, key[1:]) and not isinstance(obj[key[1:]], list) \
                and isinstance(obj[key], list):
            obj[key[1:]] = [obj[key[1:]], *obj.pop(key)]
    for key, value in list(obj.items()):
        if key in _PASS:
            continue
        if key == "contained" and key in props:
            obj[key] = [convert(r, source, target) for r in value]
            continue
        if key.startswith(rules.HOMELESS):
            homeless.append((key[1:], key, value))
            continue
        if key.startswith(rules.RESTORED):
            raise NotRepresentable(f"{path}.{key[1:]}", "a value from a cross-version "
                                   "extension and another for the same element")
        source_key = _map_path(f"{path}.{key}", to_source).rsplit(".", 1)[1]
        if key not in props:
            homeless.append((source_key, key, value))
            continue
        if (id(obj), key) in native:
            continue  # restored from an extension: the target's own already
        t_type = element_type(target, owner, key)
        s_type = element_type(source, source_owner, source_key) if source_owner else None
        if repeats(target, owner, key) != isinstance(value, list):
            if isinstance(value, list):
                if not value:
                    homeless.append((source_key, key, value))
                    continue
                if len(value) > 1:  # the first in its element, the others in an extension
                    obj[rules.HOMELESS + key] = value[1:]
                    homeless.append((source_key, rules.HOMELESS + key, value[1:]))
                value = obj[key] = value[0]
            else:
                value = obj[key] = [value]
        items = value if isinstance(value, list) else [value]
        allowed = codes(target, owner, key)
        if allowed is not None and any(i not in allowed for i in items):
            homeless.append((source_key, key, value))
            continue
        if is_primitive(t_type):
            if any(isinstance(i, (dict, list)) for i in items):
                homeless.append((source_key, key, value))
            continue
        if t_type != s_type and not (is_backbone(t_type) and is_backbone(s_type)) \
                and s_type is not None and f"{path}.{key}" not in retyped:
            homeless.append((source_key, key, value))  # a datatype that changed
            continue
        for item in items:
            if isinstance(item, dict):
                _carry(item, f"{path}.{key}", t_type, s_type, f"{source_path}.{source_key}",
                       source, target, to_source, retyped, native)
    for source_key, key, value in homeless:
        del obj[key]
        if source_key.startswith("_"):
            raise NotRepresentable(f"{source_path}.{source_key}", "extensions on a primitive "
                                   f"value without a home in FHIR {target} are not carried")
        base = choice_base(source, source_owner, source_key)
        value = _unrenamed(value, f"{path}.{key.lstrip(rules.HOMELESS)}", to_source)
        obj.setdefault("extension", []).extend(pack(
            value, element_type(source, source_owner, source_key), source, target,
            xver_prefix(source) + f"{source_path}.{base}", f"{source_path}.{base}"))


def _ordered(obj: Any, version: FhirVersion, owner: str | None) -> Any:
    """Keys in the schema's (= FHIR's) element order, recursively."""
    if isinstance(obj, list):
        return [_ordered(i, version, owner) for i in obj]
    if not isinstance(obj, dict) or not owner:
        return obj
    order = {k: n for n, k in enumerate(properties(version, owner))}
    out = {}
    for key in sorted(obj, key=lambda k: order.get(k, len(order))):
        child = element_type(version, owner, key) if key not in _PASS else None
        out[key] = _ordered(obj[key], version, child) if child and not is_primitive(child) \
            else obj[key]
    return out


def convert(resource: dict[str, Any], source: FhirVersion, target: FhirVersion
            ) -> dict[str, Any]:
    """`resource` (valid in `source`) as `target` wants it; NotRepresentable when an
    element can be carried neither natively nor in an extension."""
    return _convert(resource, source, target)[0]


def _convert(resource: dict[str, Any], source: FhirVersion, target: FhirVersion
             ) -> tuple[dict[str, Any], list[Issue]]:
    """convert() and the validator's issues with the result in `target`."""
    if source == target:
        return resource, validate(resource, target)
    rtype = resource["resourceType"]
    if rtype not in properties_types(target):
        raise NotRepresentable(rtype, f"FHIR {target} has no {rtype} resource")
    out = loads(dumps(resource))  # a copy that keeps decimals' text
    placeholders.strip(out)
    _restore_all(out, rtype, source, target, rules.renamed(rtype, source))
    rules.apply(out, up=(target == "R5"))
    native: set[tuple[int, str]] = set()
    _settle(out, native)
    _carry(out, rtype, rtype, rtype, rtype, source, target, rules.renamed(rtype, target),
           rules.retyped(rtype, target), native)
    issues = placeholders.fill(out, target)
    return _ordered(out, target, rtype), issues


@cache
def properties_types(version: FhirVersion) -> frozenset[str]:
    """The resource types of `version`."""
    return frozenset(resource_types(version))


def _normal(value: Any) -> Any:
    # Extension order carries no meaning: compared as sorted lists.
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()}
        for key in ("extension",):
            if isinstance(out.get(key), list):
                out[key] = sorted(out[key], key=lambda e: dumps(e))
        return out
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def equivalent(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same resource up to key order and the order of extensions."""
    return _normal(loads(dumps(a))) == _normal(loads(dumps(b)))


def _first_difference(a: Any, b: Any, path: str) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    return path


def convert_checked(resource: dict[str, Any], source: FhirVersion, target: FhirVersion
                    ) -> dict[str, Any]:
    """convert(), proven for this resource: the result is valid in `target` and converts
    back to `resource`; NotRepresentable (naming the element) otherwise."""
    rtype = resource.get("resourceType", "Resource")
    out, issues = _convert(resource, source, target)
    if issues:
        raise NotRepresentable(issues[0].expression or rtype,
                               f"not valid FHIR {target} once converted: {issues[0].message}")
    back = convert(out, target, source)
    if not equivalent(back, resource):
        where = _first_difference(_normal(loads(dumps(resource))), _normal(loads(dumps(back))),
                                  rtype)
        raise NotRepresentable(where, f"does not convert to FHIR {target} and back unchanged")
    return out
