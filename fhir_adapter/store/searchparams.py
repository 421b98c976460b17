"""The official SearchParameter definitions we index, read from the vendored subset in
fhir_adapter/data/searchparameters/{r4,r5}.json (HL7, CC0).

Each definition's FHIRPath expression usually covers many resource types
(`Patient.address | Practitioner.address | ...`); we keep, per resource type, the union terms
that start at that type (or at Resource/DomainResource) and compile them once.

Regenerate the vendored files from the full official bundles with
`python -m fhir_adapter.store.searchparams OFFICIAL_BUNDLE OUTPUT` (see `vendor_bundle`).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..fhirversion import FhirVersion
from .fhirpath import Eval, compile_expression, property_types

# The resources the gateway serves: the three trial resources and what they reference.
RESOURCE_TYPES = ("ResearchStudy", "ResearchSubject", "AdverseEvent", "Patient", "Group",
                  "Organization", "Practitioner", "PractitionerRole", "Location", "ConceptMap",
                  "Medication", "StructureDefinition", "CodeSystem", "EvidenceVariable", "ValueSet")
_COMMON = ("Resource", "DomainResource")
# How each parameter type is stored: uri values share the token table (exact/prefix match).
TABLE_OF = {"token": "token", "uri": "token", "string": "string", "date": "date",
            "reference": "reference", "number": "number", "quantity": "quantity"}
INDEXED_TYPES = frozenset(TABLE_OF) | {"composite"}


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: its expression relative to the composite's item."""

    expression: str
    type: str | None  # from the component's definition when the bundle has it
    compiled: Eval


@dataclass(frozen=True)
class SearchParam:
    """A search parameter as it applies to one resource type in one FHIR version."""

    code: str
    type: str
    resource_type: str
    expression: str
    url: str
    description: str
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    element: str | None = None  # FHIR type of a plain path's element (Identifier: :of-type)


def _usable(sp: dict[str, Any]) -> bool:
    mode = sp.get("processingMode") or sp.get("xpathUsage") or "normal"
    return (sp.get("type") in INDEXED_TYPES and bool(sp.get("expression"))
            and mode == "normal" and bool(set(sp.get("base", ())) & set(RESOURCE_TYPES + _COMMON)))


def vendor_bundle(official: dict[str, Any], origin: str) -> dict[str, Any]:
    """The subset of an official SearchParameter bundle that we index, entries unchanged."""
    entries = [e for e in official["entry"]
               if e["resource"].get("resourceType") == "SearchParameter" and _usable(e["resource"])]
    return {"resourceType": "Bundle", "id": "fhir-adapter-searchparameters",
            "meta": {"source": origin}, "type": "collection", "entry": entries}


def split_union(expression: str) -> list[str]:
    """Top-level `|` terms of an expression (not those inside parentheses or quotes)."""
    terms, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(expression):
        if ch == "'":
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            terms.append(expression[start:i].strip())
            start = i + 1
    terms.append(expression[start:].strip())
    return [t for t in terms if t]


_ROOT = re.compile(r"\(*\s*([A-Za-z]+)")


def restrict(expression: str, resource_type: str) -> str:
    """The terms of `expression` that apply to `resource_type`, joined again with `|`."""
    keep = [t for t in split_union(expression)
            if (m := _ROOT.match(t)) and m.group(1) in (resource_type, *_COMMON)]
    return " | ".join(keep)


@cache
def _bundle(version: FhirVersion) -> dict[str, Any]:
    name = "r4.json" if version == "R4" else "r5.json"
    path = resources.files("fhir_adapter").joinpath("data", "searchparameters", name)
    return json.loads(path.read_text("utf-8"))


@cache
def own_bundle(version: FhirVersion) -> dict[str, Any]:
    """Our own SearchParameters of `version` (data/searchparameters/own-r4.json, ...): where
    the official set has a gap (R4 AdverseEvent-identifier). Indexed like the official."""
    path = resources.files("fhir_adapter").joinpath("data", "searchparameters",
                                                    f"own-{version.lower()}.json")
    if not path.is_file():
        return {"resourceType": "Bundle", "type": "collection", "entry": []}
    return json.loads(path.read_text("utf-8"))


def definitions(version: FhirVersion) -> list[dict[str, Any]]:
    """Every SearchParameter resource indexed in `version`: the official, then our own."""
    return [e["resource"] for b in (_bundle(version), own_bundle(version)) for e in b["entry"]]


# Search parameter type of an element type: for composite components whose definition the
# official bundle lacks (R5 ResearchStudy progress-status-*: state, actual, period).
_PARAM_TYPE_OF = {
    "CodeableConcept": "token", "Coding": "token", "code": "token", "boolean": "token",
    "Identifier": "token", "string": "string", "Period": "date", "date": "date",
    "dateTime": "date", "instant": "date", "Quantity": "quantity", "Range": "quantity",
    "Reference": "reference", "decimal": "number", "integer": "number",
}
_PATH = re.compile(r"[A-Za-z]+(?:\.[A-Za-z]+)*")


def _element_type(version: FhirVersion, owner: str | None, path: str) -> str | None:
    """FHIR type at a plain dotted `path` below type `owner`, from the official schema."""
    if not owner or not _PATH.fullmatch(path):
        return None
    for step in path.split("."):
        owner = property_types(version, owner).get(step) if owner else None
    return owner


def _union_type(version: FhirVersion, rtype: str, expression: str) -> str | None:
    """The element type every term of `A.x | A.y.z` has, if they agree (else None)."""
    found = {_element_type(version, rtype, term.strip().partition(".")[2])
             for term in split_union(expression)}
    return found.pop() if len(found) == 1 else None


def _component_type(version: FhirVersion, definitions: dict[str, dict[str, Any]],
                    component: dict[str, Any], base_type: str | None) -> str | None:
    found = definitions.get(component["definition"])
    if found:
        return found["type"]
    element = _element_type(version, base_type, component["expression"])
    return _PARAM_TYPE_OF.get(element or "")


@cache
def _registry(version: FhirVersion) -> dict[str, dict[str, SearchParam]]:
    entries = definitions(version)
    by_url = {sp["url"]: sp for sp in entries}
    registry: dict[str, dict[str, SearchParam]] = {t: {} for t in RESOURCE_TYPES}
    for sp in entries:
        for rtype in RESOURCE_TYPES:
            bases = set(sp["base"])
            if rtype not in bases and not bases & set(_COMMON):
                continue
            expression = restrict(sp["expression"], rtype)
            if not expression:
                continue
            compile_expression(expression)  # fail at load, not at the first write
            base_type = _element_type(version, rtype, expression.partition(".")[2])
            components = tuple(
                Component(c["expression"], _component_type(version, by_url, c, base_type),
                          compile_expression(c["expression"]))
                for c in sp.get("component", []))
            registry[rtype][sp["code"]] = SearchParam(
                code=sp["code"], type=sp["type"], resource_type=rtype, expression=expression,
                url=sp["url"], description=sp.get("description", ""),
                targets=tuple(sp.get("target", ())), components=components,
                element=_union_type(version, rtype, expression))
    return registry


def search_params(version: FhirVersion, resource_type: str) -> dict[str, SearchParam]:
    """Every indexed search parameter of `resource_type` in `version`, by code ({} if the
    type is not one we serve)."""
    return _registry(version).get(resource_type, {})


def main(argv: list[str]) -> None:
    """Write the vendored subset: `python -m fhir_adapter.store.searchparams IN OUT ORIGIN`."""
    source, target, origin = argv
    with open(source, encoding="utf-8") as fh:
        bundle = vendor_bundle(json.load(fh), origin)
    entries = bundle.pop("entry")
    head = json.dumps(bundle, ensure_ascii=False)[:-1]
    with open(target, "w", encoding="utf-8") as fh:  # one entry per line: readable diffs
        fh.write(head + ', "entry": [\n')
        fh.write(",\n".join(json.dumps(e, ensure_ascii=False) for e in entries))
        fh.write("\n]}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
