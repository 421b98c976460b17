"""`fhir-adapter map adverse-events`: output, the stderr summary, all-or-nothing on bad rows,
--skip-invalid, --timezone, and `schema adverse-event`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fhir_adapter.cli import cli, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "NCT05003921.adverse-events.csv"
HEADER = "study_id,subject_id,event_id,verbatim_term,severity,serious,outcome,onset_date\n"
GOOD = "NCT05003921,AG01-001,E1,Headache,mild,N,recovered/resolved,2023-01-10\n"
BAD = "NCT05003921,AG01-002,E1,Nausea,extreme,N,recovered/resolved,2023-01-11\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["map", "adverse-events", *args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_example_writes_a_bundle_and_a_summary(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.json"
    code, _, err = run(capsys, str(EXAMPLE), "--fhir-version", "R5", "--timezone",
                       "America/Antigua", "-o", str(target))
    assert code == 0
    bundle = json.loads(target.read_text())
    assert bundle["type"] == "collection" and len(bundle["entry"]) == 13
    assert "13 FHIR R5 AdverseEvent(s)" in err and "8 subject(s)" in err
    assert "seriousness  serious 2 | non-serious 11" in err
    assert "criteria met requires inpatient hospitalization 2 | is life threatening 1" in err
    assert "severity     mild 7 | moderate 3 | severe 2 | not given 1" in err
    assert "CTCAE grade  grade 1 6 | grade 2 3 | grade 3 1 | grade 4 1 | not given 2" in err
    assert "outcome      recovered/resolved 9 | not recovered/not resolved 2" in err
    assert "placed in timezone America/Antigua" in err


def test_ndjson_r4_includes_the_medication_once(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.ndjson"
    code, _, _ = run(capsys, str(EXAMPLE), "--ndjson", "-o", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert code == 0 and len(lines) == 14
    assert [r["resourceType"] for r in lines].count("Medication") == 1


def test_bad_row_writes_nothing_and_names_the_cell(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "ae.csv"
    source.write_text(HEADER + GOOD + BAD + BAD.replace("AG01-002", "AG01-003"))
    target = tmp_path / "out.json"
    target.write_text("previous load")
    code, out, err = run(capsys, str(source), "-o", str(target))
    assert code == 2 and out == ""
    assert f"error: {source}, row 2, field severity: 'extreme' is not one of" in err
    assert f"error: {source}, row 3, field severity" in err
    assert "2 invalid row(s): nothing written" in err
    assert target.read_text() == "previous load"


def test_skip_invalid_maps_the_valid_rows(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "ae.csv"
    source.write_text(HEADER + GOOD + BAD)
    target = tmp_path / "out.json"
    code, _, err = run(capsys, str(source), "--skip-invalid", "-o", str(target))
    assert code == 0
    assert len(json.loads(target.read_text())["entry"]) == 1
    assert "1 invalid row(s) skipped" in err
    assert f"skipped: {source}, row 2, field severity" in err


def test_unknown_timezone_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, str(EXAMPLE), "--timezone", "Mars/Olympus_Mons")
    assert code == 2 and "unknown IANA timezone" in err


def test_supplemental_needs_sdtm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    supp = tmp_path / "suppae.csv"
    supp.write_text("STUDYID,RDOMAIN,USUBJID,IDVAR,IDVARVAL,QNAM,QVAL\n")
    code, _, err = run(capsys, str(EXAMPLE), "--supplemental", str(supp))
    assert code == 2 and "goes with an SDTM AE file" in err


def test_schema_command_prints_the_adverse_event_schema(capsys: pytest.CaptureFixture[str]) -> None:
    if "schema" not in cli.commands:
        pytest.skip("the `schema` command is not registered in this build yet")
    try:
        main(["schema", "adverse-event"])
    except SystemExit as exc:
        assert not exc.code
    printed = json.loads(capsys.readouterr().out)
    shipped = json.loads((ROOT / "fhir_adapter" / "data" / "adverse-event.schema.json")
                         .read_text())
    assert printed == shipped


def test_an_event_key_given_twice_is_an_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "ae.csv"
    source.write_text(HEADER + GOOD + GOOD.replace("Headache", "Migraine"))
    code, _, err = run(capsys, str(source), "-o", str(tmp_path / "out.json"))
    assert code == 2
    assert f"{source}, row 2, field event_id: event AG01-001|E1 is already at row 1" in err
    assert not (tmp_path / "out.json").exists()


def test_example_events_link_to_the_example_enrollments(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Patients and the ResearchStudy the events point at are the ones the enrollment
    mapping makes of examples/NCT05003921.enrollments.csv; each event follows consent."""
    from fhir_adapter.cli import map_group

    enrollments = ROOT / "examples" / "NCT05003921.enrollments.csv"
    if "enrollments" not in map_group.commands or not enrollments.exists():
        pytest.skip("the enrollment mapping or its example is not in this build yet")
    for version in ("R4", "R5"):
        enr_out, ae_out = tmp_path / f"enr-{version}.ndjson", tmp_path / f"ae-{version}.ndjson"
        try:
            main(["map", "enrollments", str(enrollments), "--fhir-version", version,
                  "--ndjson", "-o", str(enr_out)])
        except SystemExit as exc:
            assert not exc.code
        code, _, _ = run(capsys, str(EXAMPLE), "--fhir-version", version, "--ndjson",
                         "-o", str(ae_out))
        assert code == 0
        subjects = [json.loads(line) for line in enr_out.read_text().splitlines()]
        events = [json.loads(line) for line in ae_out.read_text().splitlines()]
        events = [e for e in events if e["resourceType"] == "AdverseEvent"]
        patients = {f"Patient/{r['id']}" for r in subjects if r["resourceType"] == "Patient"}
        studies = {r["study"]["reference"] for r in subjects
                   if r["resourceType"] == "ResearchSubject"}
        assert {e["subject"]["reference"] for e in events} <= patients
        assert {e["study"][0]["reference"] for e in events} == studies
    with open(enrollments, newline="", encoding="utf-8") as fh:
        consent = {row["subject_id"]: row["consent_date"] for row in csv.DictReader(fh)}
    with open(EXAMPLE, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["onset_date"][:10] >= consent[row["subject_id"]][:len(row["onset_date"])]
