"""Which FHIR versions a written resource can be served in.

A client writes in one version. Many resources (Patient, Organization, Location, ...) are
valid unchanged in the other version too: then both representations are stored and the
resource reads in both. Where the same JSON is not valid in the other version (ResearchStudy,
ResearchSubject, AdverseEvent changed a lot in R5), only the written version is stored and a
read in the other version answers 406 saying why. No guessing conversions for client data.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidResource, Issue
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
    if not validate(resource, OTHER[version]):
        out[OTHER[version]] = resource
    return out
