"""The mapping rules of mapping/adverse_event.py, one record at a time (pure function)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fhir_adapter import ids
from fhir_adapter.mapping.adverse_event import (
    AE_RESEARCH,
    BACKPORT,
    MEDDRA_EXT,
    map_adverse_event,
    medication,
)
from fhir_adapter.sources.adverse_event import AdverseEventRecord, MeddraTerm
from fhir_adapter.sources.adverse_event_format import COLUMNS
from fhir_adapter.validation import validate

BASE = AdverseEventRecord(file="t.csv", row=1, study="NCT05003921", subject_id="AG01-001",
                          event_key="E1", verbatim_term="Headache", columns=COLUMNS,
                          serious=False, onset="2023-01-10")
VERSIONS = ["R4", "R5"]


def mapped(version: str, **changes):
    result = map_adverse_event(replace(BASE, **changes), version)
    for resource in result.resources:
        assert validate(resource, version) == [], resource
    return result.resources[0], result.warnings


def ext(resource: dict, name: str) -> list[dict]:
    return [e for e in resource.get("extension", []) if e["url"].endswith("/" + name)]


def outcome_code(resource: dict, version: str) -> str:
    cc = resource["outcome"] if version == "R4" else resource["outcome"][0]
    return cc["coding"][0]["code"]


@pytest.mark.parametrize("version", VERSIONS)
def test_actual_subject_study_and_contract_ids(version: str) -> None:
    ae, _ = mapped(version)
    system = ids.subject_system("NCT05003921")
    assert ae["actuality"] == "actual"
    assert ae["id"] == ids.resource_id("AdverseEvent", system, "AG01-001|E1")
    patient = ids.resource_id("Patient", system, "AG01-001")
    assert ae["subject"] == {"reference": f"Patient/{patient}"}
    assert ae["study"] == [{"reference": f"ResearchStudy/{ids.study_resource_id('NCT05003921')}"}]
    assert mapped(version) == mapped(version)  # pure: same record, same output


@pytest.mark.parametrize("version", VERSIONS)
def test_severity_never_becomes_a_grade_nor_a_grade_a_severity(version: str) -> None:
    ae, _ = mapped(version, severity="SEVERE")
    assert not ext(ae, "ae-grade")
    ae, _ = mapped(version, grade=4)
    assert "severity" not in ae and not ext(ae, "ae-severity")
    assert ext(ae, "ae-grade")[0]["valueCodeableConcept"]["coding"][0]["code"] == "C41337"


def test_severity_is_an_element_in_r4_and_an_extension_in_r5() -> None:
    r4, _ = mapped("R4", severity="MODERATE")
    r5, _ = mapped("R5", severity="MODERATE")
    assert r4["severity"]["coding"][0]["code"] == "moderate"
    assert ext(r5, "ae-severity")[0]["url"] == AE_RESEARCH + "ae-severity"
    assert "severity" not in r5


@pytest.mark.parametrize("version", VERSIONS)
def test_death_gives_a_fatal_outcome_only_when_outcome_is_blank(version: str) -> None:
    ae, warnings = mapped(version, serious=True, criteria={"AESDTH": True})
    assert outcome_code(ae, version) == ("fatal" if version == "R4" else "C48275")
    assert any("outcome fatal" in w for w in warnings)
    ae, warnings = mapped(version, serious=True, criteria={"AESDTH": True},
                          outcome="RECOVERED/RESOLVED")  # a finding of the source: kept
    assert outcome_code(ae, version) == ("resolved" if version == "R4" else "C49498")


@pytest.mark.parametrize("version", VERSIONS)
def test_criteria_go_with_serious_events_and_with_any_met(version: str) -> None:
    base = BACKPORT if version == "R4" else AE_RESEARCH
    ae, warnings = mapped(version, serious=True,
                          criteria={"AESHOSP": True, "AESDTH": False, "AESCAN": True})
    criteria = ext(ae, "seriousness-criteria")
    assert [c["url"] for c in criteria] == [base + "seriousness-criteria"] * 3
    parts = [{e["url"]: e for e in c["extension"]} for c in criteria]
    assert [p["criterionPresent"]["valueBoolean"] for p in parts] == [False, True, True]
    assert parts[1]["criterionCode"]["valueCodeableConcept"]["coding"][0]["code"] == "C83052"
    assert parts[2]["criterionCode"]["valueCodeableConcept"] == {"text": "Involves cancer"}
    # Not serious, yet a criterion met (a finding of the source): every flag as recorded.
    ae, warnings = mapped(version, serious=False, criteria={"AESCAN": True, "AESDTH": False})
    parts = [{e["url"]: e for e in c["extension"]} for c in ext(ae, "seriousness-criteria")]
    assert [p["criterionPresent"]["valueBoolean"] for p in parts] == [False, True]
    assert ae["seriousness"]["coding"][0]["code"].lower() == "non-serious"
    ae, warnings = mapped(version, serious=False, criteria={"AESDTH": False})
    assert not ext(ae, "seriousness-criteria")  # nothing met on a non-serious event
    ae, warnings = mapped(version, serious=True)
    assert any("without any seriousness criterion" in w for w in warnings)


@pytest.mark.parametrize("version", VERSIONS)
def test_blank_seriousness_is_derived_from_a_met_criterion_or_left_out(version: str) -> None:
    ae, warnings = mapped(version, serious=None, criteria={"AESLIFE": True})
    assert ae["seriousness"]["coding"][0]["code"].lower() == "serious"
    ae, warnings = mapped(version, serious=None)
    assert "seriousness" not in ae and any("no seriousness" in w for w in warnings)


@pytest.mark.parametrize(("changes", "status"), [
    ({}, "in-progress"),
    ({"end": "2023-01-12"}, "completed"),
    ({"outcome": "RECOVERED/RESOLVED WITH SEQUELAE"}, "completed"),
    ({"outcome": "FATAL"}, "completed"),
    ({"outcome": "RECOVERING/RESOLVING"}, "in-progress"),
])
def test_r5_status(changes: dict, status: str) -> None:
    ae, _ = mapped("R5", **changes)
    assert ae["status"] == status


def test_end_date_r4_extension_and_r5_period() -> None:
    r4, _ = mapped("R4", end="2023-01-12")
    assert r4["date"] == "2023-01-10"
    assert ext(r4, "extension-AdverseEvent.occurrence")[0]["valuePeriod"] == {
        "start": "2023-01-10", "end": "2023-01-12"}
    r5, _ = mapped("R5", end="2023-01-12")
    assert r5["occurrencePeriod"] == {"start": "2023-01-10", "end": "2023-01-12"}
    r4, _ = mapped("R4")
    assert not ext(r4, "extension-AdverseEvent.occurrence")


def test_named_intervention_is_a_medication_in_r4_and_a_concept_in_r5() -> None:
    result = map_adverse_event(replace(BASE, relatedness="POSSIBLE"), "R4",
                               intervention="AlloRx")
    ae, med = result.resources
    assert med == medication("NCT05003921", "AlloRx")
    assert med["id"] == ids.resource_id("Medication", ids.NCT_SYSTEM, "NCT05003921|AlloRx")
    entity = ae["suspectEntity"][0]
    assert entity["instance"] == {"reference": f"Medication/{med['id']}", "display": "AlloRx"}
    assert entity["causality"][0]["assessment"]["coding"][0]["code"] == "C53258"
    assert entity["causality"][0]["assessment"]["text"] == "POSSIBLE"
    r5, _ = mapped("R5", relatedness="POSSIBLE", intervention="AlloRx")
    assert r5["suspectEntity"][0]["instanceCodeableConcept"] == {"text": "AlloRx"}
    assert r5["suspectEntity"][0]["causality"]["entityRelatedness"]["coding"][0]["code"] \
        == "C53258"


def test_unnamed_intervention() -> None:
    r5, _ = mapped("R5", relatedness="NONE")
    assert r5["suspectEntity"][0]["instanceReference"] == r5["study"][0]
    r4, warnings = mapped("R4", relatedness="NONE")
    assert "reference" not in r4["suspectEntity"][0]["instance"]
    assert any("no intervention name" in w for w in warnings)
    for version in VERSIONS:
        ae, _ = mapped(version)
        assert "suspectEntity" not in ae


def test_meddra_codes_only_when_given_and_every_term_kept() -> None:
    terms = (MeddraTerm("llt", "Headache", "10019211"), MeddraTerm("pt", "Headache", "10019211"),
             MeddraTerm("soc", "Nervous system disorders", None),
             MeddraTerm("bodySystem", "Nervous system disorders", None))
    for version in VERSIONS:
        ae, _ = mapped(version, meddra=terms)
        event = ae["event" if version == "R4" else "code"]
        assert event == {"coding": [{"system": "https://www.meddra.org", "code": "10019211",
                                     "display": "Headache"}], "text": "Headache"}
        levels = [e["url"] for e in ext(ae, "meddra-classification")[0]["extension"]]
        assert levels == ["llt", "pt", "soc"]  # the body system repeats the SOC
        assert ext(ae, "meddra-classification")[0]["url"] == MEDDRA_EXT
    uncoded = (MeddraTerm("pt", "Back pain", None),
               MeddraTerm("bodySystem", "Musculoskeletal disorders", None))
    ae, _ = mapped("R5", meddra=uncoded)
    assert "coding" not in ae["code"]
    assert [e["valueCoding"] for e in ext(ae, "meddra-classification")[0]["extension"]] == [
        {"system": "https://www.meddra.org", "display": "Back pain"},
        {"system": "https://www.meddra.org", "display": "Musculoskeletal disorders"}]


def test_only_the_first_body_system_repeating_the_soc_is_dropped() -> None:
    body = MeddraTerm("bodySystem", "Nervous system disorders", None)
    terms = (MeddraTerm("soc", "Nervous system disorders", None), body,
             MeddraTerm("pt", "Headache", None), MeddraTerm("bodySystem", body.term, None))
    ae, _ = mapped("R4", meddra=terms)
    levels = [e["url"] for e in ext(ae, "meddra-classification")[0]["extension"]]
    assert levels == ["soc", "pt", "bodySystem"]  # as list.remove(body) would leave it


def test_expectedness_actions_and_sponsor_id() -> None:
    r4, warnings = mapped("R4", expected=False, actions=("DRUG WITHDRAWN",), sponsor_id="L7")
    assert ext(r4, "expected-in-research-study")[0]["valueBoolean"] is False
    item = ext(r4, "mitigating-action")[0]["extension"][0]
    assert item["url"] == "item"
    assert item["valueCodeableConcept"]["coding"][0]["code"] == "DRUG WITHDRAWN"
    assert isinstance(r4["identifier"], dict) and any("AESPID" in w for w in warnings)
    r5, _ = mapped("R5", expected=False, actions=("DRUG WITHDRAWN",), sponsor_id="L7")
    assert r5["expectedInResearchStudy"] is False
    assert r5["mitigatingAction"][0]["itemCodeableConcept"]["coding"][0]["code"] == \
        "DRUG WITHDRAWN"
    assert [i["value"] for i in r5["identifier"]] == ["AG01-001|E1", "AG01-001|L7"]


@pytest.mark.parametrize("version", VERSIONS)
def test_time_without_offset(version: str) -> None:
    record = replace(BASE, onset="2023-03-26T02:30", recorded="2023-03-27T09:00:00+02:00")
    kept = map_adverse_event(record, version)
    placed = map_adverse_event(record, version, timezone="Europe/Berlin")

    def start(ae: dict) -> str:
        return ae["date"] if version == "R4" else ae["occurrencePeriod"]["start"]

    assert start(kept.resources[0]) == "2023-03-26"
    assert any("no timezone is set: kept the date" in w for w in kept.warnings)
    # 02:30 does not exist in Berlin that night (clock change): said, never silently shifted.
    assert start(placed.resources[0]) == "2023-03-26T02:30:00+01:00"
    assert any("does not exist in the timezone" in w for w in placed.warnings)
    assert placed.resources[0]["recordedDate"] == "2023-03-27T09:00:00+02:00"
