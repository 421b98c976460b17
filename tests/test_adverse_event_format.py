"""Our adverse-event format: the published schema, CSV/JSON/JSON Lines, bad rows, and the
synthetic NCT05003921 example (golden files, links to the example enrollments)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest
from golden import GOLDEN, check_golden

from fhir_adapter import conceptmaps, ids
from fhir_adapter.errors import InputError
from fhir_adapter.pipeline.adverse_events import LoadReport, adverse_event_resources
from fhir_adapter.sources.adverse_event import AdverseEventRecord, open_adverse_events
from fhir_adapter.sources.adverse_event_format import schema
from fhir_adapter.validation import validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "NCT05003921.adverse-events.csv"
ENROLLMENTS = ROOT / "examples" / "NCT05003921.enrollments.csv"

ROW = {"study_id": "NCT05003921", "subject_id": "AG01-001", "event_id": "E1",
       "verbatim_term": "Headache", "severity": "MILD", "serious": "N",
       "onset_date": "2023-01-10", "outcome": "Recovered/Resolved"}


def load(path: Path, version: str = "R4", **options) -> tuple[list[dict], LoadReport]:
    report = LoadReport()
    return list(adverse_event_resources(path, version, report, **options)), report


def write_csv(path: Path, *records: dict) -> Path:
    names = list(dict.fromkeys(k for r in records for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, names)
        writer.writeheader()
        writer.writerows(records)
    return path


def first(path: Path, **options):
    return next(iter(open_adverse_events(path, **options).records))


def test_schema_is_draft_2020_12_with_descriptions() -> None:
    doc = schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert all(p.get("description") for p in doc["properties"].values())


@pytest.mark.parametrize(("field", "map_id"), [
    ("severity", "sdtm-aesev-severity"), ("outcome", "sdtm-aeout-outcome-r4"),
    ("outcome", "sdtm-aeout-outcome-r5"), ("relatedness", "sdtm-aerel-relatedness"),
    ("action_taken", "sdtm-aeacn-action-taken")])
def test_every_schema_term_has_a_translation(field: str, map_id: str) -> None:
    spec = schema()["properties"][field]
    terms = spec.get("enum") or spec["items"]["enum"]
    for term in terms:
        assert conceptmaps.lookup(map_id, term.upper()), term


def test_every_grade_has_a_translation() -> None:
    spec = schema()["properties"]["ctcae_grade"]
    for grade in range(spec["minimum"], spec["maximum"] + 1):
        assert conceptmaps.lookup("sdtm-aetoxgr-ctcae-grade", str(grade)).code


def test_csv_json_and_json_lines_give_the_same_resources(tmp_path: Path) -> None:
    records = [ROW, {**ROW, "event_id": "E2", "serious": "Y", "hospitalisation": "yes",
                     "ctcae_grade": "3.0", "action_taken": "Dose reduced; drug interrupted",
                     "meddra_pt_code": "10019211", "meddra_pt_term": "Headache"}]
    as_csv, _ = load(write_csv(tmp_path / "ae.csv", *records))
    typed = [{**ROW, "serious": False},
             {**records[1], "serious": True, "hospitalisation": True, "ctcae_grade": 3,
              "action_taken": ["dose reduced", "drug interrupted"], "meddra_pt_code": 10019211}]
    (tmp_path / "ae.json").write_text(json.dumps(typed))
    (tmp_path / "ae.jsonl").write_text("\n".join(json.dumps(r) for r in typed) + "\n")
    as_json, _ = load(tmp_path / "ae.json")
    as_lines, report = load(tmp_path / "ae.jsonl")
    assert as_csv == as_json == as_lines
    assert report.source.format == "jsonl"


@pytest.mark.parametrize(("change", "column", "expected"), [
    ({"ctcae_grade": "6"}, "ctcae_grade", "an integer 1-5"),
    ({"ctcae_grade": "severe"}, "ctcae_grade", "an integer 1-5"),
    ({"serious": "maybe"}, "serious", "expected boolean"),
    ({"severity": "extreme"}, "severity", "mild, moderate, severe"),
    ({"outcome": "cured"}, "outcome", "recovered/resolved"),
    ({"action_taken": "dose reduced; stopped"}, "action_taken", "drug withdrawn"),
    ({"onset_date": "2023-1-10"}, "onset_date", "ISO 8601"),
    ({"onset_date": "2023-02-29"}, "onset_date", "01-28"),
    ({"end_date": "2023-01-01"}, "end_date", "before the onset"),
    ({"meddra_pt_code": "1001"}, "meddra_pt_code", "8-digit"),
    ({"verbatim_term": ""}, "verbatim_term", "verbatim"),
    ({"study_id": ""}, "study_id", "--study"),
])
def test_bad_rows_name_file_row_column_and_expectation(tmp_path: Path, change: dict,
                                                       column: str, expected: str) -> None:
    path = write_csv(tmp_path / "ae.csv", ROW, {**ROW, "event_id": "E2", **change})
    items = list(open_adverse_events(path).records)
    assert isinstance(items[0], AdverseEventRecord)
    error = items[1]
    assert isinstance(error, InputError), error
    assert (error.file, error.row, error.field_name) == (str(path), 2, column)
    assert expected in error.message


def test_unknown_columns_are_refused_not_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ae.csv", {**ROW, "severty": "mild"})
    with pytest.raises(InputError, match="unknown column") as info:
        open_adverse_events(path)
    assert info.value.field_name == "severty"


def test_json_errors_name_the_item(tmp_path: Path) -> None:
    path = tmp_path / "ae.json"
    path.write_text(json.dumps([ROW, {**ROW, "colour": "red"}, "not an object"]))
    items = list(open_adverse_events(path).records)
    assert (items[1].row, items[1].field_name) == (2, "colour")
    assert (items[2].row, items[2].message) == (3, "expected a JSON object")


def test_study_option_fills_a_missing_study(tmp_path: Path) -> None:
    row = {k: v for k, v in ROW.items() if k != "study_id"}
    record = first(write_csv(tmp_path / "ae.csv", row), study="NCT05003921")
    assert isinstance(record, AdverseEventRecord) and record.study == "NCT05003921"


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_example_golden(version: str, update_golden: bool) -> None:
    resources, report = load(EXAMPLE, version, timezone="America/Antigua")
    for resource in resources:
        assert validate(resource, version) == [], resource["id"]
    check_golden(GOLDEN / "adverse_event" / f"NCT05003921.{version.lower()}.expected.json",
                 resources, update_golden)
    assert not report.skipped and not report.errors


def test_example_has_serious_events_and_links_to_the_study_and_subjects() -> None:
    resources, report = load(EXAMPLE, "R4")
    events = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    meds = [r for r in resources if r["resourceType"] == "Medication"]
    assert [m["code"]["text"] for m in meds] == ["AlloRx"]  # once per output
    assert report.counts["seriousness"] == {"serious": 2, "non-serious": 11}
    study = {"reference": f"ResearchStudy/{ids.study_resource_id('NCT05003921')}"}
    system = ids.subject_system("NCT05003921")
    subjects = {f"AG01-00{n}" for n in range(1, 9)}
    patients = {f"Patient/{ids.resource_id('Patient', system, s)}" for s in subjects}
    assert all(e["study"] == [study] for e in events)
    assert {e["subject"]["reference"] for e in events} == patients
    if ENROLLMENTS.exists():  # written by the enrollment mapping's example
        with open(ENROLLMENTS, newline="", encoding="utf-8") as fh:
            enrolled = {row.get("subject_id") for row in csv.DictReader(fh)}
        assert subjects <= enrolled


def test_example_time_without_offset_uses_the_timezone_or_keeps_the_date() -> None:
    placed, report = load(EXAMPLE, "R5", timezone="America/Antigua")
    fever = next(r for r in placed if r["code"]["text"].startswith("Transient fever"))
    assert fever["occurrencePeriod"]["start"] == "2023-02-02T20:15:00-04:00"
    assert any("placed in timezone America/Antigua" in w for w in report.warnings)
    kept, report = load(EXAMPLE, "R5")
    fever = next(r for r in kept if r["code"]["text"].startswith("Transient fever"))
    assert fever["occurrencePeriod"]["start"] == "2023-02-02"
    assert any("no timezone is set: kept the date" in w for w in report.warnings)
