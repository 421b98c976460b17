"""`_summary` and `_elements` (R4 search.html#summary, #elements): subsets of a resource.

Only these requests parse stored bytes; everything else serves them untouched. Subsetting is
at the top level (a summary keeps a summary element whole), and subsetted resources carry
the SUBSETTED tag, as R4 requires.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..errors import BadRequest
from ..store.canonical import dumps, loads
from ..validation import FhirVersion, model_class

SUMMARY_VALUES = ("true", "false", "text", "data", "count")
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED"}
_ALWAYS = ("resourceType", "id", "meta")


@cache
def _flags(version: FhirVersion, resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, read from its fhir.resources model."""
    summary, required = set(), set()
    for field in model_class(version, resource_type).model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        name = field.alias or ""
        if extra.get("summary_element_property"):
            summary.add(name)
        if extra.get("element_required"):
            required.add(name)
    return frozenset(summary), frozenset(required)


def _owner(key: str) -> str:
    # "_status" (a primitive's id/extension) belongs to "status".
    return key[1:] if key.startswith("_") else key


def _named(key: str, names: set[str]) -> bool:
    own = _owner(key)
    # A choice element is asked for by its base name: "occurrence" covers occurrenceDateTime.
    return own in names or any(own.startswith(n) and own[len(n):][:1].isupper() for n in names)


def check(summary: str | None, elements: str | None) -> None:
    """400 for a `_summary` value R4 does not define, or both parameters at once."""
    if summary is not None and summary not in SUMMARY_VALUES:
        raise BadRequest(f"_summary={summary} is not one of {', '.join(SUMMARY_VALUES)}")
    if summary not in (None, "false") and elements:
        raise BadRequest("_summary and _elements cannot be combined")


def wanted(summary: str | None, elements: str | None) -> bool:
    """Whether the request subsets resources at all."""
    return bool(elements) or summary in ("true", "text", "data")


def subset(resource: dict[str, Any], version: FhirVersion, summary: str | None,
           elements: str | None) -> dict[str, Any]:
    """The part of `resource` the request asked for, tagged SUBSETTED."""
    summary_names, required = _flags(version, resource["resourceType"])
    if elements:
        names = {n.strip() for n in elements.split(",") if n.strip()}
        excluded = {n[1:] for n in names if n.startswith("-")}
        if excluded:  # fhirpy's `elements(..., exclude=True)`: everything but these
            keep = {k for k in resource if k in _ALWAYS or not _named(k, excluded)}
        else:
            keep = {k for k in resource if k in _ALWAYS or _named(k, names | set(required))}
    elif summary == "true":
        keep = {k for k in resource if k in _ALWAYS or _named(k, set(summary_names | required))}
    elif summary == "text":
        keep = {k for k in resource if k in _ALWAYS or _named(k, {"text"} | set(required))}
    elif summary == "data":
        keep = {k for k in resource if k != "text"}
    else:
        return resource
    out = {k: v for k, v in resource.items() if k in keep}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    # FHIR element order: resourceType, id, meta first, then the rest as stored.
    return {**{k: out[k] for k in _ALWAYS if k in out},
            **{k: v for k, v in out.items() if k not in _ALWAYS}}


def subset_bytes(body: bytes, version: FhirVersion, summary: str | None,
                 elements: str | None) -> bytes:
    """`subset` on serialised bytes (stored bytes pass through when nothing is asked)."""
    if not wanted(summary, elements):
        return body
    return dumps(subset(loads(body), version, summary, elements))
