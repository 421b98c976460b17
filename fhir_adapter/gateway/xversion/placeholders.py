"""Required elements that a conversion leaves empty (R4 ResearchStudy.status when no R5
progressStatus entry has a state R4 knows, R4 RelatedArtifact.type for an R5-only code,
R4 AdverseEvent.suspectEntity.instance for an R5 CodeableConcept, ...): the value itself
travels in a cross-version extension, the element holds a data-absent-reason
(`unsupported`) so that the result is valid. Such placeholders are the conversion's own:
they are taken out before converting back, and made again where the other version needs
them, so they never carry meaning of their own.

Which elements are required is asked of the validator (it knows the models' and the
official schema's cardinalities, including required choices), not retyped here.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from ...errors import Issue
from ...validation import FhirVersion, validate
from .schema import element_type, is_primitive, repeats

DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
PLACEHOLDER: dict[str, Any] = {"extension": [{"url": DAR, "valueCode": "unsupported"}]}

# What the validator says of a missing required element: (message pattern, where the
# element name is: a group of the message, or None for the last step of the expression).
_REQUIRED = (
    (re.compile(r'^"(\w+)" is a required property$'), 1),
    (re.compile(r"^Value for the field '(\w+)' is required\.$"), None),
    (re.compile(r"^Field required$"), None),
    # A required choice: the models count only a value, so the first complex type's key.
    (re.compile(r"^Value error, Expect any of field value from this list \[([^]]*)\]"), 1),
)
_STEP = re.compile(r"\.(\w+)(?:\[(\d+)\])?")


def _is_placeholder(value: Any) -> bool:
    return value == PLACEHOLDER or value == [PLACEHOLDER]


def strip(obj: Any) -> None:
    """Take every placeholder out of `obj` (in place; children first, so that an element
    holding only placeholders goes too)."""
    if isinstance(obj, list):
        for item in obj:
            strip(item)
        return
    if not isinstance(obj, dict):
        return
    for key in [k for k in obj if k not in ("extension", "modifierExtension")]:
        value = obj[key]
        strip(value)
        if isinstance(value, list) and PLACEHOLDER in value:
            value = obj[key] = [v for v in value if v != PLACEHOLDER]
        if value == [] or (value == PLACEHOLDER and not (key.startswith("_")
                                                         and key[1:] in obj)):
            del obj[key]


def _missing(resource: dict[str, Any], version: FhirVersion, issues: list[Issue]
             ) -> list[tuple[list[tuple[str, int | None]], str]]:
    """(steps to the parent, name) of each required element the validator finds missing."""
    out = []
    rtype = resource["resourceType"]
    for issue in issues:
        for pattern, group in _REQUIRED:
            found = pattern.match(issue.message)
            if not found:
                continue
            expression = issue.expression or rtype
            steps = [(m[1], int(m[2]) if m[2] else None)
                     for m in _STEP.finditer(expression[len(rtype):])]
            if group is None:
                if not steps:
                    break
                name = steps.pop()[0]
            else:
                name = found[group]
            if "'" in name:  # the choice's options
                options = re.findall(r"'(\w+)'", name)
                name = next((o for o in options if not _primitive_choice(
                    resource, version, steps, o)), options[0])
            out.append((steps, name))
            break
    return out


def _primitive_choice(resource: dict[str, Any], version: FhirVersion,
                      steps: list[tuple[str, int | None]], option: str) -> bool:
    owner: str | None = resource["resourceType"]
    for step, _ in steps:
        owner = element_type(version, owner, step) if owner else None
    return is_primitive(element_type(version, owner, option) if owner else None)


def fill(resource: dict[str, Any], version: FhirVersion) -> list[Issue]:
    """Put a placeholder in each required element of `resource` that is missing; the
    validator's issues with the result ([] = valid in `version`)."""
    for _ in range(4):  # a placeholder object may itself miss a required child
        issues = validate(resource, version)
        missing = _missing(resource, version, issues)
        if not missing:
            return issues
        done = json.dumps(resource, sort_keys=True, default=str)
        for steps, name in missing:
            obj: Any = resource
            owner: str | None = resource["resourceType"]
            for step, index in steps:
                owner = element_type(version, owner, step) if owner else None
                obj = obj.get(step) if isinstance(obj, dict) else None
                if index is not None and isinstance(obj, list) and index < len(obj):
                    obj = obj[index]
            if not isinstance(obj, dict):
                continue
            kind = element_type(version, owner, name) if owner else None
            if kind is None or is_primitive(kind):
                if name not in obj:
                    obj.setdefault("_" + name, copy.deepcopy(PLACEHOLDER))
            elif name not in obj:
                obj[name] = [copy.deepcopy(PLACEHOLDER)] if repeats(version, owner, name) \
                    else copy.deepcopy(PLACEHOLDER)
        if json.dumps(resource, sort_keys=True, default=str) == done:
            return issues  # nothing more a placeholder can do: the caller reports them
    return validate(resource, version)

