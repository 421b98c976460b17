"""Analysis populations (SDTM SUPPDM ITT, SAFETY, EFFICACY, COMPLT8, ...) -> one FHIR Group per
population of a study, its members the Patients of the subjects flagged Y. Pure.

Field table (R4 and R5 unless said):
  (study, QNAM)        -> Group.id = ids.resource_id("Group", <subject system>, "population|"
                          QNAM): deterministic, and apart from any other Group of the study
                          (the study's cohort of every enrolled subject is not one of these)
  QNAM                 -> identifier {system <subject system>:analysis-population, value QNAM};
                          code {coding {POPULATION_SYSTEM, QNAM, the code system's display},
                          text QLABEL}
  QLABEL (else QNAM)   -> name
  study                -> characteristic {code analysis population of, valueReference
                          {type ResearchStudy, identifier the study's NCT or sponsor id},
                          exclude false}: a logical reference, not a literal one, because
                          the ResearchStudy references the Group (below) and a cycle between
                          the two types would leave a push no order to write them in
  subjects flagged Y   -> member[].entity = Patient/<id> (file order); quantity = their count
  (fixed)              -> type person; R4 actual true; R5 membership enumerated
  (generated)          -> text: the narrative (name, members, criteria)

The ResearchStudy references each of its populations with our extension
analysis-population (data/extensions/analysis-population.json; R4 and R5 have no element for
them): `link_populations`, applied by the study load to the Groups already stored and after
every load by pipeline/populations.py, so the link holds whichever is loaded first.

Found with `Group?code=<POPULATION_SYSTEM>|ITT`, `Group?identifier=...|ITT`,
`Group?member=Patient/<id>` (a subject's populations), our SearchParameter
`ResearchStudy?analysis-population=Group/<id>` (the study of a population) and
`ResearchStudy?_id=<id>&_include=ResearchStudy:analysis-population` (a study's populations).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import ids
from ..fhirversion import FhirVersion
from . import narrative

POPULATION_SYSTEM = "https://fhir-adapter.dev/fhir/CodeSystem/analysis-population"
POPULATION_EXTENSION = "https://fhir-adapter.dev/fhir/StructureDefinition/analysis-population"
# The displays of POPULATION_SYSTEM (own_terms publishes it, a fragment: COMPLTnn is open):
# every population flag the SUPPDM reader knows (sources/sdtm_dm.POPULATIONS). A coding says
# the code system's display; the sponsor's QLABEL is the concept's text and the Group's name.
POPULATION_DISPLAYS = {
    "ITT": "Intent to Treat Population Flag", "SAFETY": "Safety Population Flag",
    "EFFICACY": "Efficacy Population Flag", "PPROT": "Per Protocol Population Flag",
    "FULLSET": "Full Analysis Set Flag", "PKPOP": "Pharmacokinetic Population Flag",
    "RANDOM": "Randomized Population Flag", "COMPLT8": "Completers of Week 8",
    "COMPLT16": "Completers of Week 16", "COMPLT24": "Completers of Week 24"}


def population_id(study: str, code: str) -> str:
    """The Group id of population `code` of `study` (deterministic)."""
    return ids.resource_id("Group", ids.subject_system(study), f"population|{code}")


def map_population(study: str, code: str, label: str | None, patient_ids: list[str],
                   version: FhirVersion) -> dict[str, Any]:
    """The Group of one analysis population of `study`: its members the given Patients."""
    system = ids.subject_system(study)
    study_system, study_value = ids.study_key(study)
    display = POPULATION_DISPLAYS.get(code)
    concept: dict[str, Any] = {"coding": [{"system": POPULATION_SYSTEM, "code": code}
                                          | ({"display": display} if display else {})]}
    if label:
        concept["text"] = label
    group: dict[str, Any] = {
        "resourceType": "Group", "id": population_id(study, code),
        "identifier": [{"system": f"{system}:analysis-population", "value": code}]}
    if version == "R4":
        group |= {"type": "person", "actual": True}
    else:
        group |= {"type": "person", "membership": "enumerated"}
    group |= {
        "code": concept, "name": label or code, "quantity": len(patient_ids),
        "characteristic": [{
            "code": {"coding": [{"system": POPULATION_SYSTEM, "code": "population-of",
                                 "display": "Analysis population of"}]},
            "valueReference": {"type": "ResearchStudy", "identifier": {
                "system": study_system, "value": study_value}},
            "exclude": False}],
        "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in patient_ids]}
    if not patient_ids:
        del group["member"]
    return narrative.added(group)


def study_of(group: dict[str, Any]) -> str | None:
    """The ResearchStudy id an analysis-population Group belongs to (from the study's
    identifier in its characteristic), or None for any other Group."""
    if group.get("resourceType") != "Group" or not any(c.get("system") == POPULATION_SYSTEM
               for c in (group.get("code") or {}).get("coding") or []):
        return None
    for characteristic in group.get("characteristic") or []:
        identifier = (characteristic.get("valueReference") or {}).get("identifier") or {}
        if identifier.get("system") and identifier.get("value"):
            return ids.resource_id("ResearchStudy", identifier["system"], identifier["value"])
    return None


def link_populations(study: dict[str, Any], group_ids: Iterable[str]) -> dict[str, Any]:
    """The ResearchStudy with one analysis-population extension per Group id (in id order,
    replacing any it had): the same in R4 and R5. A ResearchStudy without populations keeps
    none."""
    if study.get("resourceType") != "ResearchStudy":
        return study
    kept = [e for e in study.get("extension") or [] if e.get("url") != POPULATION_EXTENSION]
    added = [{"url": POPULATION_EXTENSION, "valueReference": {"reference": f"Group/{gid}"}}
             for gid in sorted(set(group_ids))]
    if kept + added == (study.get("extension") or []):
        return study
    out = dict(study)
    if kept + added:
        out["extension"] = kept + added
    else:
        out.pop("extension", None)
    return out
