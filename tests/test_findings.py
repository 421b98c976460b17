"""Findings, not failures: synthetic rows of our own for every data-quality rule (the public
fixtures have none of these contradictions). Each row maps as recorded in R4 and R5 (valid,
tagged with its rule, the finding naming file, row and field); `strict` refuses it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from golden import GOLDEN, check_golden

from fhir_adapter import findings
from fhir_adapter.errors import InputError
from fhir_adapter.pipeline.adverse_events import LoadReport, adverse_event_resources
from fhir_adapter.pipeline.enrollments import enrollment_resources
from fhir_adapter.pipeline.report import Collector
from fhir_adapter.validation import validate

VERSIONS = ("R4", "R5")
ROOT = Path(__file__).resolve().parents[1]

SDTM_AE = {"STUDYID": "S1", "DOMAIN": "AE", "USUBJID": "S1-001", "AESEQ": "1",
           "AETERM": "HEADACHE", "AEDECOD": "Headache", "AESEV": "MILD", "AESER": "N",
           "AEOUT": "RECOVERED/RESOLVED", "AESDTH": "N", "AESHOSP": "N", "AESLIFE": "N",
           "AESTDTC": "2024-03-01", "AEENDTC": "2024-03-04"}
OUR_AE = {"study_id": "NCT05003921", "subject_id": "AG01-001", "event_id": "E1",
          "verbatim_term": "Nausea", "serious": "N", "outcome": "recovered/resolved",
          "results_in_death": "N", "hospitalisation": "N", "life_threatening": "N",
          "onset_date": "2023-01-11"}
DM = {"STUDYID": "S1", "USUBJID": "S1-001", "SUBJID": "001", "RFICDTC": "2024-02-20",
      "RFSTDTC": "2024-03-01", "RFENDTC": "2024-06-01", "DTHDTC": "", "DTHFL": "", "SEX": "F",
      "AGE": "61", "AGEU": "YEARS", "ARM": "Placebo", "ARMCD": "Pbo"}
OURS = {"study": "NCT05003921", "subject_id": "AG01-001", "consent_date": "2023-01-09",
        "enrollment_date": "2023-01-23", "status": "enrolled", "sex": "F"}


@dataclass
class Case:
    """One synthetic source (a row, plus what it joins) whose row 1 breaks `rule`."""

    rule: str
    kind: str  # "ae" | "enrollments"
    row: dict[str, str]
    field: str
    joined: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # option -> rows

    def __str__(self) -> str:
        return f"{self.rule}-{'sdtm' if 'USUBJID' in self.row else 'ours'}"


CASES = [
    Case("ae-not-serious-criterion-met", "ae", SDTM_AE | {"AESHOSP": "Y"}, "AESER"),
    Case("ae-not-serious-criterion-met", "ae", OUR_AE | {"hospitalisation": "Y"}, "serious"),
    Case("ae-seriousness-blank-criterion-met", "ae", SDTM_AE | {"AESER": "", "AESLIFE": "Y"},
         "AESER"),
    Case("ae-seriousness-blank-criterion-met", "ae",
         OUR_AE | {"serious": "", "life_threatening": "Y"}, "serious"),
    Case("ae-death-outcome-not-fatal", "ae", SDTM_AE | {"AESER": "Y", "AESDTH": "Y"}, "AEOUT"),
    Case("ae-death-outcome-not-fatal", "ae", OUR_AE | {"serious": "Y", "results_in_death": "Y"},
         "outcome"),
    Case("ae-fatal-outcome-death-no", "ae",
         SDTM_AE | {"AESER": "Y", "AESHOSP": "Y", "AEOUT": "FATAL"}, "AESDTH"),
    Case("ae-fatal-outcome-death-no", "ae",
         OUR_AE | {"serious": "Y", "hospitalisation": "Y", "outcome": "fatal"},
         "results_in_death"),
    Case("ae-fatal-not-serious", "ae", SDTM_AE | {"AESDTH": "", "AEOUT": "FATAL"}, "AESER"),
    Case("ae-fatal-not-serious", "ae", OUR_AE | {"results_in_death": "", "outcome": "fatal"},
         "serious"),
    Case("ae-supplemental-conflict", "ae", SDTM_AE, "AESEV", {"supplemental": [
        {"STUDYID": "S1", "RDOMAIN": "AE", "USUBJID": "S1-001", "IDVAR": "AESEQ",
         "IDVARVAL": "1", "QNAM": "AESEV", "QLABEL": "Severity", "QVAL": "SEVERE"}]}),
    Case("dm-death-date-without-flag", "enrollments", DM | {"DTHDTC": "2024-05-02"}, "DTHFL"),
    Case("dm-death-disposition-without-flag", "enrollments", DM, "DTHFL", {"disposition": [
        {"STUDYID": "S1", "USUBJID": "S1-001", "DSSEQ": "1", "DSTERM": "DIED IN HOSPITAL",
         "DSDECOD": "DEATH", "DSCAT": "DISPOSITION EVENT", "DSSTDTC": "2024-05-02"}]}),
    Case("dm-reference-start-after-end", "enrollments", DM | {"RFENDTC": "2024-02-25"},
         "RFENDTC"),
    Case("dm-consent-after-start", "enrollments", DM | {"RFICDTC": "2024-03-05"}, "RFSTDTC"),
    Case("enrollment-end-with-ongoing-status", "enrollments", OURS | {"end_date": "2023-03-01"},
         "end_date"),
    Case("enrollment-dates-out-of-order", "enrollments", OURS | {"enrollment_date": "2022-12-31"},
         "enrollment_date"),
]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def produce(case: Case, folder: Path, version: str, strict: bool = False
            ) -> tuple[list[dict[str, Any]], Collector]:
    source = write_csv(folder / f"{case.kind}.csv", [case.row])
    options = {name: write_csv(folder / f"{name}.csv", rows) for name, rows in case.joined.items()}
    collector = Collector()
    resources: Iterator[dict[str, Any]]
    if case.kind == "ae":
        resources = adverse_event_resources(source, version, LoadReport(), strict=strict,
                                            reporter=collector, **options)
    else:
        resources = enrollment_resources(source, version, today=date(2026, 1, 2), strict=strict,
                                         report=collector, **options)
    return list(resources), collector


def test_every_rule_has_a_synthetic_case_and_is_documented() -> None:
    assert {c.rule for c in CASES} == set(findings.RULES)
    docs = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert all(f"`{rule}`" in docs for rule in findings.RULES)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("version", VERSIONS)
def test_a_contradiction_maps_as_recorded_and_is_reported(case: Case, version: str,
                                                          tmp_path: Path) -> None:
    resources, collector = produce(case, tmp_path, version)
    [finding] = [f for f in collector.findings if f.rule == case.rule]
    assert (Path(finding.file).name, finding.row, finding.field) == (
        f"{case.kind}.csv", 1, case.field)
    made = [r for r in resources if r["resourceType"] in ("AdverseEvent", "Patient",
                                                           "ResearchSubject")]
    assert made, "the row was not mapped"
    for resource in made:
        assert validate(resource, version) == []
        tags = resource["meta"]["tag"]
        assert {"system": findings.SYSTEM, "code": case.rule,
                "display": findings.RULES[case.rule].display} in tags


@pytest.mark.parametrize("case", CASES, ids=str)
def test_strict_refuses_the_row(case: Case, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        produce(case, tmp_path, "R4", strict=True)
    error = caught.value
    text = " ".join([str(error), *(str(r) for r in error.rows), *error.details,
                     *(d for r in error.rows for d in r.details)])
    assert case.rule in text and "row 1" in text


def criteria(event: dict[str, Any]) -> dict[str, bool]:
    """criterion (NCIt code, else its text) -> present, from seriousness-criteria extensions."""
    out = {}
    for ext in event.get("extension", []):
        if ext["url"].endswith("/seriousness-criteria"):
            parts = {p["url"]: p for p in ext["extension"]}
            concept = parts["criterionCode"]["valueCodeableConcept"]
            code = concept["coding"][0]["code"] if "coding" in concept else concept["text"]
            out[code] = parts["criterionPresent"]["valueBoolean"]
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_not_serious_death_keeps_every_fact(version: str, tmp_path: Path) -> None:
    """The pilot's deaths: AESER N, AESDTH Y, AEOUT FATAL. Non-serious, fatal, death and
    hospitalisation flags Y, all in the output."""
    case = Case("ae-not-serious-criterion-met", "ae",
                SDTM_AE | {"AESDTH": "Y", "AESHOSP": "Y", "AEOUT": "FATAL"}, "AESER")
    [event], collector = produce(case, tmp_path, version)
    assert event["seriousness"]["coding"][0]["code"].lower() == "non-serious"
    outcome = event["outcome"] if version == "R4" else event["outcome"][0]
    assert outcome["coding"][0]["code"] == ("fatal" if version == "R4" else "C48275")
    # NCIt: C48275 results in death, C83052 hospitalization, C84266 life threatening
    assert criteria(event) == {"C48275": True, "C84266": False, "C83052": True}
    assert sorted(f.rule for f in collector.findings) == ["ae-fatal-not-serious",
                                                          "ae-not-serious-criterion-met"]


def test_code_system_lists_the_rules_and_is_valid() -> None:
    system = findings.code_system()
    assert [c["code"] for c in system["concept"]] == list(findings.RULES)
    for version in VERSIONS:
        assert validate(system, version) == []


def test_report_line_has_the_documented_keys(tmp_path: Path) -> None:
    _, collector = produce(CASES[0], tmp_path, "R4")
    assert list(collector.findings[0].as_dict()) == ["file", "row", "field", "rule", "message"]


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_adverse_events_with_findings(version: str, update_golden: bool) -> None:
    """Inconsistent SDTM AE rows (+ SUPPAE with AETRTEM and a conflict), mapped as recorded."""
    folder = GOLDEN / "adverse_event"
    collector = Collector()
    resources = list(adverse_event_resources(
        folder / "findings.input.csv", version, LoadReport(),
        supplemental=folder / "findings.suppae.input.csv", reporter=collector))
    report = [f.as_dict() | {"file": Path(str(f.file)).name} for f in collector.findings]
    check_golden(folder / f"findings.{version.lower()}.expected.json",
                 {"resources": resources, "report": report}, update_golden)


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_enrollments_with_findings_and_populations(version: str,
                                                          update_golden: bool) -> None:
    """Inconsistent DM rows with DS (DSTERM) and SUPPDM populations: Patients,
    ResearchSubjects, then one Group per population."""
    folder = GOLDEN / "enrollment"
    collector = Collector()
    resources = list(enrollment_resources(
        folder / "findings.dm.input.csv", version, today=date(2026, 1, 2),
        disposition=folder / "findings.ds.input.csv",
        supplemental=folder / "findings.suppdm.input.csv", report=collector))
    groups = {g["identifier"][0]["value"]: g for g in resources if g["resourceType"] == "Group"}
    assert sorted(groups) == ["COMPLT8", "ITT", "SAFETY"]
    assert groups["ITT"]["quantity"] == 5 and groups["SAFETY"]["quantity"] == 3
    assert len({g["id"] for g in groups.values()}) == 3
    report = [f.as_dict() | {"file": Path(str(f.file)).name} for f in collector.findings]
    check_golden(folder / f"findings.{version.lower()}.expected.json",
                 {"resources": resources, "report": report}, update_golden)


@pytest.mark.parametrize("version", VERSIONS)
def test_treatment_emergent_in_our_format(version: str, tmp_path: Path) -> None:
    rows = [OUR_AE | {"treatment_emergent": "N"}, OUR_AE | {"event_id": "E2",
                                                              "treatment_emergent": "yes"},
            OUR_AE | {"event_id": "E3"}]
    source = write_csv(tmp_path / "ae.csv", rows)
    events = [r for r in adverse_event_resources(source, version, LoadReport())
              if r["resourceType"] == "AdverseEvent"]
    flags = [[e["valueBoolean"] for e in r.get("extension", [])
              if e["url"] == "https://fhir-adapter.dev/fhir/StructureDefinition/treatment-emergent"]
             for r in events]
    assert flags == [[False], [True], []]  # not given: no extension, nothing invented


@pytest.mark.parametrize("version", VERSIONS)
def test_end_with_ongoing_status_keeps_status_end_and_reason(version: str,
                                                             tmp_path: Path) -> None:
    case = Case("enrollment-end-with-ongoing-status", "enrollments",
                OURS | {"end_date": "2023-03-01", "end_reason": "moved away"}, "end_date")
    resources, collector = produce(case, tmp_path, version)
    subject = next(r for r in resources if r["resourceType"] == "ResearchSubject")
    assert subject["period"] == {"start": "2023-01-09", "end": "2023-03-01"}
    assert {f.field for f in collector.findings} == {"end_date", "end_reason"}
    if version == "R4":
        assert subject["status"] == "on-study"  # as recorded: not ended by the end date
    else:
        last = subject["progress"][-1]
        assert last["subjectState"]["coding"][0]["code"] == "on-study"
        assert last["reason"]["text"] == "moved away"
