"""Analysis populations (SDTM SUPPDM ITT, SAFETY, EFFICACY, COMPLT8, ...) -> one FHIR Group per
population of a study, its members the Patients of the subjects flagged Y. Pure.

Field table (R4 and R5 unless said):
  (study, QNAM)        -> Group.id = ids.resource_id("Group", <subject system>, "population|"
                          QNAM): deterministic, and apart from any other Group of the study
                          (the study's cohort of every enrolled subject is not one of these)
  QNAM                 -> identifier {system <subject system>:analysis-population, value QNAM};
                          code {coding {POPULATION_SYSTEM, QNAM, QLABEL}, text QLABEL}
  QLABEL (else QNAM)   -> name
  study                -> characteristic {code analysis population of, valueReference
                          ResearchStudy/<id>, exclude false}
  subjects flagged Y   -> member[].entity = Patient/<id> (file order); quantity = their count
  (fixed)              -> type person; R4 actual true; R5 membership enumerated

Found with `Group?code=<POPULATION_SYSTEM>|ITT`, `Group?identifier=...|ITT`, or
`Group?member=Patient/<id>` (a subject's populations).
"""

from __future__ import annotations

from typing import Any

from .. import ids
from ..fhirversion import FhirVersion

POPULATION_SYSTEM = "https://fhir-adapter.dev/fhir/CodeSystem/analysis-population"


def population_id(study: str, code: str) -> str:
    """The Group id of population `code` of `study` (deterministic)."""
    return ids.resource_id("Group", ids.subject_system(study), f"population|{code}")


def map_population(study: str, code: str, label: str | None, patient_ids: list[str],
                   version: FhirVersion) -> dict[str, Any]:
    """The Group of one analysis population of `study`: its members the given Patients."""
    system = ids.subject_system(study)
    concept: dict[str, Any] = {"coding": [{"system": POPULATION_SYSTEM, "code": code}
                                          | ({"display": label} if label else {})]}
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
            "valueReference": {
                "reference": f"ResearchStudy/{ids.study_resource_id(study)}"},
            "exclude": False}],
        "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in patient_ids]}
    if not patient_ids:
        del group["member"]
    return group
