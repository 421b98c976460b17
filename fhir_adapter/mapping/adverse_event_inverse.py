"""FHIR AdverseEvent (R4 or R5, as `adverse_event.py` writes it) -> the safety facts, in the
source vocabulary: for the load summary a safety officer reads, and for round-trip tests.

Codes go back through the same ConceptMaps, read in reverse (the first source term whose
target is the code); a code that no map produced comes back as None, never guessed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..conceptmaps import get_map
from ..fhirversion import FhirVersion
from .adverse_event import AE_RESEARCH, BACKPORT, TREATMENT_EMERGENT, XVER_OCCURRENCE


@cache
def _reverse(map_id: str) -> dict[tuple[str | None, str | None], str]:
    """(target system, target code or display) -> first source code mapping to it."""
    out: dict[tuple[str | None, str | None], str] = {}
    for group in get_map(map_id)["group"]:
        for element in group["element"]:
            for target in element.get("target", []):
                key = (group.get("target"), target.get("code")) if target.get("code") \
                    else (None, target.get("display"))
                out.setdefault(key, element["code"])
    return out


def _source(map_id: str, cc: dict | None) -> str | None:
    for coding in (cc or {}).get("coding", []):
        found = _reverse(map_id).get((coding.get("system"), coding.get("code")))
        if found:
            return found
    if cc and not cc.get("coding"):
        return _reverse(map_id).get((None, cc.get("text")))
    return None


def _extensions(resource: dict, url: str) -> list[dict]:
    return [e for e in resource.get("extension", []) if e.get("url") == url]


def fhir_to_record(resource: dict[str, Any], version: FhirVersion) -> dict[str, Any]:
    """The safety facts of one AdverseEvent: serious (bool), criteria ({SDTM flag: bool}),
    severity, grade (int), outcome, relatedness, actions (CDISC terms), onset/end/recorded
    (FHIR text), expected, treatment_emergent, subject, study, term."""
    facts = safety_facts(resource, version)
    if version == "R4":
        period = next((e["valuePeriod"] for e in _extensions(resource, XVER_OCCURRENCE)), {})
        onset, end = resource.get("date"), period.get("end")
        expected = next((e["valueBoolean"] for e in
                         _extensions(resource, BACKPORT + "expected-in-research-study")), None)
        actions = [e["extension"][0]["valueCodeableConcept"]
                   for e in _extensions(resource, BACKPORT + "mitigating-action")]
        term = resource.get("event", {}).get("text")
    else:
        period = resource.get("occurrencePeriod", {})
        onset, end = period.get("start"), period.get("end")
        expected = resource.get("expectedInResearchStudy")
        actions = [m["itemCodeableConcept"] for m in resource.get("mitigatingAction", [])]
        term = resource.get("code", {}).get("text")
    return {
        "subject": resource.get("subject", {}).get("reference"),
        "study": [s.get("reference") for s in resource.get("study", [])],
        "term": term,
        **facts,
        "actions": [_source("sdtm-aeacn-action-taken", cc) for cc in actions],
        "onset": onset, "end": end, "recorded": resource.get("recordedDate"),
        "expected": expected,
        "treatment_emergent": next((e["valueBoolean"] for e in
                                    _extensions(resource, TREATMENT_EMERGENT)), None),
    }


def safety_facts(resource: dict[str, Any], version: FhirVersion) -> dict[str, Any]:
    """What the load summary counts, as `fhir_to_record` reads it: serious, criteria,
    severity, grade, outcome, relatedness (one pass over the extensions: this runs per
    event of a bulk load)."""
    v = version.lower()
    base = BACKPORT if version == "R4" else AE_RESEARCH
    criteria_url, grade_url = base + "seriousness-criteria", base + "ae-grade"
    severity_url = AE_RESEARCH + "ae-severity" if version == "R5" else None
    criteria = {}
    grade = severity_cc = None
    found_grade = found_severity = False
    for ext in resource.get("extension", []):
        url = ext.get("url")
        if url == criteria_url:
            parts = {e["url"]: e for e in ext["extension"]}
            flag = _source("sdtm-ae-seriousness-criteria",
                           parts["criterionCode"]["valueCodeableConcept"])
            criteria[flag] = parts["criterionPresent"]["valueBoolean"]
        elif url == grade_url and not found_grade:  # the first, as fhir_to_record reads
            grade, found_grade = ext["valueCodeableConcept"], True
        elif url == severity_url and severity_url and not found_severity:
            severity_cc, found_severity = ext["valueCodeableConcept"], True
    serious = _source(f"sdtm-aeser-seriousness-{v}", resource.get("seriousness"))
    entity = (resource.get("suspectEntity") or [{}])[0]
    if version == "R4":
        severity_cc = resource.get("severity")
        outcome_cc = resource.get("outcome")
        related_cc = (entity.get("causality") or [{}])[0].get("assessment")
    else:
        outcome_cc = (resource.get("outcome") or [None])[0]
        related_cc = entity.get("causality", {}).get("entityRelatedness")
    grade_text = _source("sdtm-aetoxgr-ctcae-grade", grade)
    return {
        "serious": None if serious is None else serious == "Y",
        "criteria": criteria,
        "severity": _source("sdtm-aesev-severity", severity_cc),
        "grade": int(grade_text) if grade_text else None,
        "outcome": _source(f"sdtm-aeout-outcome-{v}", outcome_cc),
        "relatedness": _source("sdtm-aerel-relatedness", related_cc),
    }
