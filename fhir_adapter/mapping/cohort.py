"""A study's enrolled subjects as one actual Group (the cohort), and the study's link to it.
Pure: the loader gives the subjects it has stored (fhir_adapter/pipeline/cohorts.py).

Field table (stored ResearchSubjects of one study -> FHIR, R4 and R5 unless said):
  the study's ResearchStudy id     -> Group.id = ids.resource_id("Group", COHORT_SYSTEM, id)
                                      (one per study; not an SUPPDM population Group's id),
                                      identifier {system COHORT_SYSTEM, value the study id}
  -                                -> type person, R4 actual true / R5 membership
                                      enumerated, name "Enrolled subjects: <title>"
  each subject's Patient           -> member.entity, in Patient id order; a subject whose
                                      state says it was never enrolled (candidate, screening,
                                      ineligible, not-registered...) is no member: the
                                      description says how many were left out
  number of members                -> quantity
  (generated)                      -> text: the narrative (name, description, members)
  (no reference back to the study: the study references the Group, and a cycle between the
  two types would leave a push to a server that checks references no order to write in)
ResearchStudy (not a site's sub-study): R5 recruitment.actualGroup = Reference(Group/<cohort>);
  R4 the cross-version extension ResearchStudy.recruitment, sub-extension actualGroup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import ids
from ..fhirversion import FhirVersion
from . import narrative

COHORT_SYSTEM = "urn:fhir-adapter:cohort"
XVER_RECRUITMENT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ResearchStudy.recruitment"
# Subject states (R4 status, R5 subjectState) before enrolment, or without it.
NOT_ENROLLED = frozenset({"candidate", "eligible", "ineligible", "not-registered",
                          "pending-on-study", "potential-candidate", "screening"})


def cohort_id(study_id: str) -> str:
    """The id of the cohort Group of the ResearchStudy `study_id`."""
    return ids.resource_id("Group", COHORT_SYSTEM, study_id)


def subject_state(subject: dict[str, Any], version: FhirVersion) -> str | None:
    """A ResearchSubject's current state: R4 status; R5 its last progress subjectState."""
    if version == "R4":
        return subject.get("status")
    states = [c["code"] for p in subject.get("progress") or []
              for c in (p.get("subjectState") or {}).get("coding") or [] if c.get("code")]
    return states[-1] if states else None


def cohort_group(study_id: str, title: str | None, subjects: Iterable[dict[str, Any]],
                 version: FhirVersion) -> dict[str, Any]:
    """The cohort Group of the study from its ResearchSubjects (in `version`)."""
    members: set[str] = set()
    left_out = 0
    field = "individual" if version == "R4" else "subject"
    for subject in subjects:
        ref = (subject.get(field) or {}).get("reference", "")
        if not ref.startswith("Patient/"):
            continue
        if subject_state(subject, version) in NOT_ENROLLED:
            left_out += 1
            continue
        members.add(ref)
    description = (f"{len(members)} enrolled subject(s); {left_out} subject(s) not enrolled "
                   "(candidate, screening, ineligible, not registered) are not members")
    group: dict[str, Any] = {"resourceType": "Group", "id": cohort_id(study_id)}
    if version == "R4":  # R4 has no Group.description: the cross-version extension
        group["extension"] = [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/"
                                      "extension-Group.description",
                               "valueMarkdown": description}]
    group |= {"identifier": [{"system": COHORT_SYSTEM, "value": study_id}], "active": True,
              "type": "person"}
    group |= {"actual": True} if version == "R4" else {"membership": "enumerated"}
    group["name"] = f"Enrolled subjects: {title or study_id}"
    if version == "R5":
        group["description"] = description
    group["quantity"] = len(members)
    if members:
        group["member"] = [{"entity": {"reference": ref}} for ref in sorted(members)]
    return narrative.added(group)


def link_study(study: dict[str, Any], version: FhirVersion) -> dict[str, Any]:
    """The ResearchStudy with its cohort Group as recruitment.actualGroup (R4: in the
    cross-version recruitment extension); a site's sub-study (partOf) is left as it is."""
    if study.get("resourceType") != "ResearchStudy" or study.get("partOf"):
        return study
    ref = {"reference": f"Group/{cohort_id(study['id'])}"}
    out = dict(study)
    if version == "R5":
        out["recruitment"] = {**(study.get("recruitment") or {}), "actualGroup": ref}
        return out
    extensions = [dict(e) for e in study.get("extension") or []]
    found = next((e for e in extensions if e.get("url") == XVER_RECRUITMENT), None)
    if found is None:
        found = {"url": XVER_RECRUITMENT, "extension": []}
        extensions.append(found)
    found["extension"] = [e for e in found.get("extension") or []
                          if e.get("url") != "actualGroup"] + [
        {"url": "actualGroup", "valueReference": ref}]
    out["extension"] = extensions
    return out
