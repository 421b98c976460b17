"""Which FHIR versions a written resource can be served in.

A client writes in one version; the other version's representation is its conversion
(gateway/xversion: the structural changes between R4 and R5, elements without a home
in the official cross-version extensions), stored when it is valid there and converts back
unchanged. Where it cannot be (an element neither version's extensions can carry, a
required element with no source), only the written version is stored and a read in the
other version answers 406 naming the element.
"""

from __future__ import annotations

from typing import Any

import fhir_adapter.gateway.xversion as xversion

from ..errors import InvalidResource, Issue
from ..store.canonical import loads
from ..validation import FhirVersion, validate

OTHER: dict[FhirVersion, FhirVersion] = {"R4": "R5", "R5": "R4"}


def check(resource: dict[str, Any], version: FhirVersion, where: str = "") -> None:
    """422 with one issue (and its FHIRPath) per problem when `resource` is not valid."""
    issues = validate(resource, version)
    if issues:
        raise InvalidResource(
            (f"{where}: " if where else "")
            + f"{resource.get('resourceType', 'resource')} is not valid FHIR {version}: "
            + "; ".join(str(i) for i in issues[:3]), issues=[_relocate(i, where) for i in issues])


def _relocate(issue: Issue, where: str) -> Issue:
    # Inside a Bundle: "AdverseEvent.outcome" -> "Bundle.entry[3].resource.outcome".
    if not where or not issue.expression:
        return issue
    _, _, rest = issue.expression.partition(".")
    path = where + (f".{rest}" if rest else "")
    return Issue(issue.severity, issue.code, issue.message, path)


def representations(resource: dict[str, Any], version: FhirVersion,
                    where: str = "") -> dict[str, dict[str, Any]]:
    """{version: resource} plus the other version when the same JSON is valid there too;
    raises InvalidResource when it is not valid in `version`."""
    check(resource, version, where)
    out = {version: resource}
    try:
        out[OTHER[version]] = xversion.convert_checked(resource, version, OTHER[version])
    except xversion.NotRepresentable:
        pass  # served in `version` only; a read in the other says why (responses.body_in)
    return out


def why_not(body: bytes, version: FhirVersion, wanted: FhirVersion) -> tuple[str, str | None]:
    """Why a resource stored in `version` has no representation in `wanted`, and the
    element (FHIRPath) that cannot be carried when one can be named."""
    try:
        xversion.convert_checked(loads(body), version, wanted)
    except xversion.NotRepresentable as exc:
        return str(exc), exc.element
    return ("it was stored before conversions between versions existed; write it again "
            "to add its other version", None)
