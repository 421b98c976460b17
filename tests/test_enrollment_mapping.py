"""mapping.subject: de-identified Patient + ResearchSubject, R4 and R5, valid in both, with the
course, arm, age and date rules of its docstring."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from fhir_adapter import conceptmaps, ids
from fhir_adapter.dates import parse_date
from fhir_adapter.mapping.subject import AGE_EXTENSION, map_subject
from fhir_adapter.sources.enrollment import CourseEvent, EnrollmentRecord
from fhir_adapter.validation import validate

TODAY = date(2026, 1, 1)
VERSIONS = ["R4", "R5"]


def rec(**kw: Any) -> EnrollmentRecord:
    base = {"file": "t.csv", "row": 1, "format": "sdtm", "study": "CDISCPILOT01",
            "subject_id": "01-701-1015"}
    return EnrollmentRecord(**(base | kw))


def ds(term: str, when: str | None, seq: float = 1, category: str = "disposition",
       ) -> CourseEvent:
    return CourseEvent(term, "sdtm", category, parse_date(when) if when else None, None, seq,
                       "ds.csv", int(seq))


def run(record: EnrollmentRecord, version: str, **kw: Any) -> tuple[dict, dict, list[str]]:
    mapped = map_subject(record, version, today=TODAY, **kw)  # type: ignore[arg-type]
    for resource in mapped.resources:
        assert validate(resource, version) == [], resource  # type: ignore[arg-type]
    patient, subject = mapped.resources
    return patient, subject, mapped.warnings


def states(subject: dict) -> list[tuple[str, str | None]]:
    return [(p["subjectState"]["coding"][0]["code"], p.get("startDate"))
            for p in subject["progress"] if "subjectState" in p]


@pytest.mark.parametrize("version", VERSIONS)
def test_ids_and_references_follow_the_contracts(version: str) -> None:
    patient, subject, _ = run(rec(subject_number="1015", site_id="701", arm="Placebo",
                                  actual_arm="Placebo"), version)
    system = ids.subject_system("CDISCPILOT01")
    assert patient["id"] == ids.resource_id("Patient", system, "01-701-1015")
    assert subject["id"] == ids.resource_id("ResearchSubject", system, "01-701-1015")
    assert subject["study"]["reference"] == (
        f"ResearchStudy/{ids.study_resource_id('CDISCPILOT01')}")
    link = "individual" if version == "R4" else "subject"
    assert subject[link]["reference"] == f"Patient/{patient['id']}"
    assert [i["value"] for i in patient["identifier"]] == ["01-701-1015", "1015"]
    if version == "R4":
        assert (subject["assignedArm"], subject["actualArm"]) == ("Placebo", "Placebo")
    else:
        assert subject["assignedComparisonGroup"] == ids.arm_link_id("Placebo")
        assert subject["status"] == "active"
    assert not {"name", "telecom", "photo", "contact"} & set(patient)


@pytest.mark.parametrize("version", VERSIONS)
def test_deidentified_patient(version: str) -> None:
    patient, _, warnings = run(rec(sex="F", birth_year=1961, age=63.0, age_unit="YEARS",
                                   races=("WHITE",), ethnicity="HISPANIC OR LATINO",
                                   country="USA", death_date=parse_date("2014-07-02T10:00"),
                                   death_flag=True), version)
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1961"
    assert patient["deceasedDateTime"] == "2014"
    assert patient["address"] == [{"country": "USA"}]
    age = next(e for e in patient["extension"] if e["url"] == AGE_EXTENSION)["valueAge"]
    assert age == {"value": 63, "unit": "years", "system": "http://unitsofmeasure.org",
                   "code": "a"}
    race = patient["extension"][0]["extension"]
    assert race[0]["valueCoding"]["code"] == "2106-3" and race[-1]["valueString"] == "WHITE"
    assert patient["extension"][1]["extension"][0]["valueCoding"]["code"] == "2135-2"


@pytest.mark.parametrize("age, unit, birth_year, shown, birth_kept", [
    (89.0, "YEARS", None, {"value": 89}, None),
    (90.0, "YEARS", None, {"value": 90, "comparator": ">="}, None),
    (102.0, "YEARS", 1912, {"value": 90, "comparator": ">="}, False),
    (1100.0, "MONTHS", None, {"value": 90, "comparator": ">="}, None),
    (None, None, 1936, None, False),  # 90 by `today`
    (None, None, 1937, None, True),
])
def test_safe_harbor_ages(age: float | None, unit: str | None, birth_year: int | None,
                          shown: dict | None, birth_kept: bool | None) -> None:
    patient, _, warnings = run(rec(age=age, age_unit=unit, birth_year=birth_year), "R4")
    ext = {e["url"]: e for e in patient.get("extension", [])}
    if shown is None:
        assert AGE_EXTENSION not in ext
    else:
        value = ext[AGE_EXTENSION]["valueAge"]
        assert {k: value[k] for k in shown} == shown
        assert value.get("comparator") == shown.get("comparator")
    if birth_kept is not None:
        assert ("birthDate" in patient) == birth_kept
        assert any("Safe Harbor" in w for w in warnings) != birth_kept


@pytest.mark.parametrize("events, start, expected_r4, expected_r5", [
    ([], None, "candidate", [("candidate", None)]),
    ([], "2020-01-02", "on-study", [("on-study", "2020-01-02")]),
    ([ds("COMPLETED", "2020-06-01")], "2020-01-02", "off-study",
     [("on-study", "2020-01-02"), ("off-study", "2020-06-01")]),
    ([ds("SCREEN FAILURE", "2019-12-20")], None, "ineligible", [("ineligible", "2019-12-20")]),
    ([ds("INFORMED CONSENT OBTAINED", "2019-12-01", 1, "milestone"),
      ds("WITHDRAWAL BY SUBJECT", "2019-12-10", 2)], None, "withdrawn",
     [("screening", "2019-12-01"), ("withdrawn", "2019-12-10")]),
    ([ds("ADVERSE EVENT", "2019-12-10")], None, "not-registered",
     [("not-registered", "2019-12-10")]),
    ([ds("RANDOMIZED", "2020-01-01", 1, "milestone"), ds("WITHDRAWAL BY SUBJECT", "2020-02-01", 2)],
     None, "off-study", [("on-study", "2020-01-01"), ("off-study", "2020-02-01")]),
    # The latest event decides, whatever the file order; undated events come last.
    ([ds("COMPLETED", None, 3), ds("ADVERSE EVENT", "2020-03-01", 2)], "2020-01-02",
     "off-study", [("on-study", "2020-01-02"), ("off-study", "2020-03-01")]),
])
def test_course_gives_the_status(events: list[CourseEvent], start: str | None,
                                 expected_r4: str, expected_r5: list) -> None:
    record = rec(events=tuple(events), start_date=parse_date(start) if start else None)
    _, r4, _ = run(record, "R4")
    _, r5, _ = run(record, "R5")
    assert r4["status"] == expected_r4
    assert states(r5) == expected_r5


def test_r5_progress_milestones_reasons_and_end_dates() -> None:
    record = rec(consent_date=parse_date("2019-12-01"), events=(
        ds("RANDOMIZED", "2020-01-01", 1, "milestone"), ds("DEATH", "2020-03-01", 2)))
    patient, subject, _ = run(record, "R5")
    progress = subject["progress"]
    kinds = [p["type"]["coding"][0]["code"] for p in progress]
    assert kinds == ["Enrollment", "Milestone", "Enrollment", "Enrollment"]
    assert progress[1]["milestone"]["coding"][0]["code"] == "Randomized"
    assert progress[0]["reason"]["coding"][0]["code"] == "informedConsentSigned"
    assert progress[0]["endDate"] == "2020-01-01"
    assert progress[3]["reason"] == {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/state-change-reason", "code": "death",
        "display": "death (adverse event)"}], "text": "DEATH"}
    assert patient["deceasedBoolean"] is True
    assert subject["period"] == {"start": "2019-12-01", "end": "2020-03-01"}


def test_unmapped_disposition_is_a_warning_not_a_status() -> None:
    record = rec(start_date=parse_date("2020-01-02"), events=(ds("SPONSOR WHIM", "2020-02-02"),))
    _, subject, warnings = run(record, "R4")
    assert subject["status"] == "on-study"
    assert any("'SPONSOR WHIM' is not in ConceptMap" in w for w in warnings)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("armcd, arm", [("SCRNFAIL", "Screen Failure"),
                                        ("Scrnfail", "Screen Failure"),
                                        (None, "Not Assigned"), ("UNPLAN", "Unplanned Treatment")])
def test_pseudo_arms_are_not_arms(version: str, armcd: str | None, arm: str) -> None:
    _, subject, warnings = run(rec(arm=arm, arm_code=armcd, actual_arm=arm,
                                   actual_arm_code=armcd), version)
    assert not {"assignedArm", "actualArm", "assignedComparisonGroup",
                "actualComparisonGroup"} & set(subject)
    assert any("not an arm of the study" in w for w in warnings) == (armcd == "UNPLAN")


def test_dates_timezone_and_deidentification() -> None:
    record = rec(consent_date=parse_date("2019-12-01"), start_date=parse_date("2020-01-02"),
                 end_date=parse_date("2020-06-01T11:45"), events=(ds("COMPLETED", "2020-06-01"),))
    _, subject, warnings = run(record, "R5")
    assert subject["period"] == {"start": "2019-12-01", "end": "2020-06-01"}
    assert any(w.startswith("RFPENDTC has a time of day without UTC offset") for w in warnings)
    _, subject, warnings = run(record, "R5", timezone="America/New_York")
    assert subject["period"]["end"] == "2020-06-01T11:45:00-04:00"
    assert not any("RFPENDTC" in w for w in warnings)
    _, subject, _ = run(record, "R5", deidentify_dates=True)
    assert subject["period"] == {"start": "2019", "end": "2020"}
    assert {p.get("startDate") for p in subject["progress"]} == {"2019", "2020"}


def test_period_end_before_start_is_dropped_with_a_warning() -> None:
    record = rec(start_date=parse_date("2020-01-02"), end_date=parse_date("2019-01-01"))
    _, subject, warnings = run(record, "R4")
    assert subject["period"] == {"start": "2020-01-02"}
    assert any("period end not carried" in w for w in warnings)


def test_race_ethnicity_edge_cases() -> None:
    patient, _, warnings = run(rec(races=("UNKNOWN", "ASIAN", "PURPLE"),
                                   ethnicity="NOT REPORTED"), "R4")
    race, ethnicity = patient["extension"][:2]
    codes = [p["valueCoding"]["code"] for p in race["extension"] if p["url"] == "ombCategory"]
    assert codes == ["2028-9"]  # UNK never beside a category (US Core us-core-23)
    assert race["extension"][-1]["valueString"] == "UNKNOWN, ASIAN, PURPLE"
    assert ethnicity["extension"] == [{"url": "text", "valueString": "NOT REPORTED"}]
    assert any("RACE 'PURPLE'" in w for w in warnings)


def test_unmapped_sources_are_reported() -> None:
    _, _, warnings = run(rec(sex="X", age=3.0, age_unit="FORTNIGHTS",
                             unmapped=("SUPPDM ITT (Intent to Treat)",)), "R4")
    assert any("SEX 'X'" in w for w in warnings)
    assert any("FORTNIGHTS" in w for w in warnings)
    assert "SUPPDM ITT (Intent to Treat): not mapped" in warnings


def test_our_format_statuses_and_reasons() -> None:
    def ours(status: str, reason: str | None = None, **kw: Any) -> EnrollmentRecord:
        event = CourseEvent(status, "enrollment", "disposition", parse_date("2023-06-12"),
                            reason, 0.0, "e.csv", 1)
        return replace(rec(format="enrollment", consent_date=parse_date("2023-01-01"), **kw),
                       events=(event,), end_reason=reason)
    started = {"start_date": parse_date("2023-02-01")}
    _, r4, _ = run(ours("withdrawn", "Moved away", **started), "R4")
    _, r5, _ = run(ours("withdrawn", "Moved away", **started), "R5")
    assert r4["status"] == "off-study"
    assert r5["progress"][-1]["reason"]["coding"][0]["code"] == "withdrawnConsent"
    assert r5["progress"][-1]["reason"]["text"] == "Moved away"
    _, r5, _ = run(ours("discontinued", "lost to follow-up", **started), "R5")
    assert "coding" not in r5["progress"][-1]["reason"]  # a CDISC term with no HL7 reason
    _, r5, _ = run(ours("discontinued", "adverse event", **started), "R5")
    assert r5["progress"][-1]["reason"]["coding"][0]["code"] == "adverseEvent"
    _, r4, _ = run(ours("withdrawn"), "R4")
    assert r4["status"] == "withdrawn"  # left before enrolment


DSDECOD_REQUIRED = [
    "COMPLETED", "ADVERSE EVENT", "DEATH", "LACK OF EFFICACY", "LOST TO FOLLOW-UP",
    "PHYSICIAN DECISION", "PROTOCOL DEVIATION", "SCREEN FAILURE", "STUDY TERMINATED BY SPONSOR",
    "WITHDRAWAL BY SUBJECT", "INFORMED CONSENT OBTAINED", "RANDOMIZED", "PREGNANCY",
    "PROGRESSIVE DISEASE", "RECOVERY", "SITE TERMINATED BY SPONSOR", "TECHNICAL PROBLEMS",
    "NON-COMPLIANCE WITH STUDY DRUG", "OTHER"]


@pytest.mark.parametrize("map_id", ["sdtm-dsdecod-to-r4-subject-status",
                                    "sdtm-dsdecod-to-r5-subject-state",
                                    "sdtm-dsdecod-to-state-change-reason"])
def test_dsdecod_maps_cover_the_cdisc_terms(map_id: str) -> None:
    assert set(DSDECOD_REQUIRED) <= set(conceptmaps.source_codes(map_id))


def test_enrollment_status_maps_cover_the_schema_enum() -> None:
    from fhir_adapter.sources.enrollment import schema

    statuses = set(schema()["properties"]["status"]["enum"])
    for map_id in ("enrollment-status-to-r4-subject-status",
                   "enrollment-status-to-r5-subject-state",
                   "enrollment-status-to-state-change-reason"):
        assert set(conceptmaps.source_codes(map_id)) == statuses, map_id
