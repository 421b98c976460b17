"""The extensions fhir-adapter defines, as StructureDefinitions built from the data files in
data/extensions/ (one per extension: adding one is a data-only change), and a checker that
holds our extensions in a resource to them: context, cardinality, value type, sub-extensions.

The StructureDefinitions carry a differential (what the HL7 validator and IG tools need to
build the snapshot from the base Extension); R4 and R5 differ only in fhirVersion."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

BASE = "https://fhir-adapter.dev/fhir/StructureDefinition/"
CORE_SD = "http://hl7.org/fhir/StructureDefinition/"
EXTENSION = CORE_SD + "Extension"
FHIR_VERSION = {"R4": "4.0.1", "R5": "5.0.0"}


@cache
def specs() -> dict[str, dict[str, Any]]:
    """{url: spec} of every extension we define (data/extensions/*.json)."""
    folder = resources.files("fhir_adapter") / "data" / "extensions"
    out = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            spec = json.loads(item.read_text(encoding="utf-8"))
            out[BASE + spec["id"]] = spec
    return out


def _name(ident: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in ident.split("-"))


def _value(path: str, eid: str, types: list[str], targets: list[str] | None = None
           ) -> dict[str, Any]:
    profiles = [CORE_SD + t for t in targets or []]
    return {"id": f"{eid}.value[x]", "path": f"{path}.value[x]", "min": 1,
            "type": [{"code": t} | ({"targetProfile": profiles} if t == "Reference"
                                    and profiles else {}) for t in types]}


def _differential(spec: dict[str, Any], url: str) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = [{
        "id": "Extension", "path": "Extension", "short": spec["title"],
        "definition": spec["description"], "min": spec.get("min", 0),
        "max": spec.get("max", "1")}]
    parts = spec.get("parts")
    if parts:
        elements.append({"id": "Extension.extension", "path": "Extension.extension",
                         "slicing": {"discriminator": [{"type": "value", "path": "url"}],
                                     "rules": "closed"}})
        for part in parts:
            eid = f"Extension.extension:{part['name']}"
            elements += [
                {"id": eid, "path": "Extension.extension", "sliceName": part["name"],
                 "short": part.get("short", part["name"]),
                 "definition": part.get("short", part["name"]), "min": part.get("min", 0),
                 "max": part.get("max", "1")},
                {"id": f"{eid}.extension", "path": "Extension.extension.extension", "max": "0"},
                {"id": f"{eid}.url", "path": "Extension.extension.url",
                 "fixedUri": part["name"]},
                _value("Extension.extension", eid, part["value"])]
    else:
        elements.append({"id": "Extension.extension", "path": "Extension.extension",
                         "max": "0"})
    elements.append({"id": "Extension.url", "path": "Extension.url", "fixedUri": url})
    if parts:
        elements.append({"id": "Extension.value[x]", "path": "Extension.value[x]",
                         "max": "0"})
    else:
        elements.append(_value("Extension", "Extension", spec["value"], spec.get("targets")))
    return elements


def structure_definition(url: str, version: str) -> dict[str, Any]:
    """The StructureDefinition of our extension `url` in FHIR `version` (R4 or R5)."""
    spec = specs()[url]
    sd = {
        "resourceType": "StructureDefinition", "id": spec["id"], "url": url,
        "version": "1.0.0", "name": _name(spec["id"]), "title": spec["title"],
        "status": "active", "experimental": False, "publisher": "fhir-adapter",
        "description": spec["description"], "fhirVersion": FHIR_VERSION[version],
        "kind": "complex-type", "abstract": False,
        "context": [{"type": "element", "expression": c} for c in spec["context"]],
        "type": "Extension", "baseDefinition": EXTENSION, "derivation": "constraint",
        "differential": {"element": _differential(spec, url)},
    }
    if version == "R4":  # the official R4 JSON schema's FHIRVersion enum stops at 4.0.0
        del sd["fhirVersion"]
    return sd


def _max(value: str) -> float:
    return float("inf") if value == "*" else int(value)


def _value_problems(where: str, ext: dict[str, Any], types: list[str]) -> list[str]:
    values = [k for k in ext if k.startswith("value")]
    if len(values) != 1:
        return [f"{where}: needs exactly one value[x], has {values or 'none'}"]
    kind = values[0].removeprefix("value")
    if kind not in (t[:1].upper() + t[1:] for t in types):  # valueBoolean is type boolean
        return [f"{where}: value{kind} is not one of {types}"]
    return []


def _target_problems(where: str, ext: dict[str, Any], targets: list[str] | None
                     ) -> list[str]:
    """A literal reference in a Reference value names one of the allowed target types."""
    ref = (ext.get("valueReference") or {}).get("reference")
    if not targets or not ref:
        return []
    if ref.split("/")[-2:-1] and ref.split("/")[-2] in targets:
        return []
    return [f"{where}: references {ref!r}, allowed targets {targets}"]


def _check_one(where: str, ext: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    parts = spec.get("parts")
    if not parts:
        if ext.get("extension"):
            return [f"{where}: a simple extension has no sub-extensions"]
        return (_value_problems(where, ext, spec["value"])
                + _target_problems(where, ext, spec.get("targets")))
    problems = [f"{where}: a complex extension has no value[x]"
                for k in ext if k.startswith("value")]
    by_name = {p["name"]: p for p in parts}
    subs = ext.get("extension") or []
    if not subs:
        problems.append(f"{where}: a complex extension needs sub-extensions")
    for sub in subs:
        part = by_name.get(sub.get("url"))
        if part is None:
            problems.append(f"{where}: sub-extension {sub.get('url')!r} is not defined")
            continue
        problems += _value_problems(f"{where}.{part['name']}", sub, part["value"])
        if sub.get("extension"):
            problems.append(f"{where}.{part['name']}: has sub-extensions")
    for part in parts:
        count = sum(1 for s in subs if s.get("url") == part["name"])
        if not part.get("min", 0) <= count <= _max(part.get("max", "1")):
            problems.append(f"{where}.{part['name']}: {count} given, allowed "
                            f"{part.get('min', 0)}..{part.get('max', '1')}")
    return problems


def check(resource: dict[str, Any]) -> list[str]:
    """Every way an extension of ours in `resource` breaks its StructureDefinition (context,
    cardinality, value type, sub-extensions); an undefined url of ours is a problem too."""
    problems: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, path)
            return
        if not isinstance(value, dict):
            return
        ours = [e for e in value.get("extension") or [] if isinstance(e, dict)
                and str(e.get("url", "")).startswith(BASE)]
        for url in dict.fromkeys(e["url"] for e in ours):
            spec = specs().get(url)
            if spec is None:
                problems.append(f"{path}: extension {url} has no StructureDefinition")
                continue
            if path not in spec["context"]:
                problems.append(f"{path}: {spec['id']} is not allowed here (context "
                                f"{spec['context']})")
            found = [e for e in ours if e["url"] == url]
            if not spec.get("min", 0) <= len(found) <= _max(spec.get("max", "1")):
                problems.append(f"{path}: {spec['id']} {len(found)} times, allowed "
                                f"{spec.get('min', 0)}..{spec.get('max', '1')}")
            for ext in found:
                problems.extend(_check_one(f"{path}.extension({spec['id']})", ext, spec))
        for key, child in value.items():
            if key not in ("extension", "resourceType") and isinstance(child, (dict, list)):
                walk(child, f"{path}.{key.lstrip('_')}")
    walk(resource, resource.get("resourceType", "?"))
    return problems
