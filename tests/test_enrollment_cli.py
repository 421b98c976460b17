"""`fhir-adapter map enrollments` and `fhir-adapter schema`: what a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import fixture_path

from fhir_adapter.cli import main
from fhir_adapter.validation import validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "NCT05003921.enrollments.csv"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def bad_copy(tmp_path: Path) -> Path:
    lines = EXAMPLE.read_text().splitlines()
    lines[3] = lines[3].replace("2023-01-16", "2023-01-32")  # AG01-003's consent_date
    lines[5] = lines[5].replace(",M,", ",X,")  # AG01-005's sex
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_example_maps_to_a_valid_bundle(tmp_path: Path, version: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    code, _, err = run(["map", "enrollments", str(EXAMPLE), "--fhir-version", version,
                        "-o", str(out)], capsys)
    assert code == 0, err
    bundle = json.loads(out.read_text())
    assert validate(bundle, version) == []
    assert len(bundle["entry"]) == 16
    assert "16 FHIR" in err


def test_sdtm_xpt_and_csv_output_is_byte_identical(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    slice_dir = fixture_path("sdtm", "cdiscpilot01-slice")
    outputs = []
    for ext in ("xpt", "csv"):
        out = tmp_path / f"{ext}.ndjson"
        code, _, err = run(["map", "enrollments", str(slice_dir / f"dm.{ext}"), "--disposition",
                            str(slice_dir / f"ds.{ext}"), "--fhir-version", "R5", "--ndjson",
                            "-o", str(out)], capsys)
        assert code == 0, err
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 24
    # One warning line per kind, then how many rows it concerned.
    assert "(6 rows in all) RFPENDTC has a time of day" in err


def test_study_option_keys_sdtm_by_nct(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slice_dir = fixture_path("sdtm", "cdiscpilot01-slice")
    code, out, err = run(["map", "enrollments", str(slice_dir / "dm.csv"), "--study",
                          "NCT00000001", "--ndjson"], capsys)
    assert code == 0, err
    first = json.loads(out.splitlines()[0])
    assert first["identifier"][0]["system"] == "urn:fhir-adapter:subject:nct00000001"


def test_one_bad_row_rejects_the_file_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    out.write_text("previous content")
    code, stdout, err = run(["map", "enrollments", str(bad_copy(tmp_path)), "-o", str(out)],
                            capsys)
    assert code == 2
    assert out.read_text() == "previous content"
    assert stdout == ""
    assert err.strip().splitlines() == [
        f"error: {tmp_path / 'bad.csv'}, row 3, field consent_date: expected a day of the "
        "month 01-31, got '2023-01-32'"]


def test_skip_invalid_maps_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.ndjson"
    code, _, err = run(["map", "enrollments", str(bad_copy(tmp_path)), "--skip-invalid",
                        "--ndjson", "-o", str(out)], capsys)
    assert code == 0
    assert len(out.read_text().splitlines()) == 12
    skipped = [line for line in err.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 2
    assert "row 5, field sex: expected one of M, F, U, UNDIFFERENTIATED (CDISC SEX), got 'X'" \
        in skipped[1]
    assert "12 FHIR R4 resource(s) written" in err and "2 invalid row(s) skipped" in err


def test_bad_timezone_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["map", "enrollments", str(EXAMPLE), "--timezone", "Nowhere/Land"],
                       capsys)
    assert code == 2 and "unknown IANA timezone" in err


def test_schema_command_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema", "enrollment"], capsys)
    assert code == 0
    printed = json.loads(out)
    shipped = json.loads((ROOT / "fhir_adapter" / "data" / "enrollment.schema.json").read_text())
    assert printed == shipped
    code, _, err = run(["schema", "no-such-format"], capsys)
    assert code == 2 and "enrollment" in err


def test_supplemental_races_reach_the_patient(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    dm = tmp_path / "dm.csv"
    dm.write_text("STUDYID,USUBJID,SUBJID,RACE,SEX,AGE,AGEU\n"
                  "S1,S1-001,001,MULTIPLE,M,70.0,YEARS\n")
    supp = tmp_path / "suppdm.csv"
    supp.write_text("STUDYID,RDOMAIN,USUBJID,IDVAR,IDVARVAL,QNAM,QLABEL,QVAL\n"
                    "S1,DM,S1-001,,,RACE1,Race 1,WHITE\n"
                    "S1,DM,S1-001,,,RACE2,Race 2,ASIAN\n"
                    "S1,DM,S1-001,,,ITT,Intent-to-Treat Population Flag,Y\n"
                    "S1,DM,S1-001,,,SAFETY,Safety Population Flag,N\n"
                    "S1,DM,S1-001,,,RACEOTH,Race Other,MAORI\n")
    code, out, err = run(["map", "enrollments", str(dm), "--supplemental", str(supp),
                          "--ndjson"], capsys)
    assert code == 0, err
    patient = json.loads(out.splitlines()[0])
    race = patient["extension"][0]["extension"]
    assert [p["valueCoding"]["code"] for p in race if p["url"] == "ombCategory"] == [
        "2106-3", "2028-9"]
    assert race[-1] == {"url": "text", "valueString": "MULTIPLE, WHITE, ASIAN"}
    assert "SUPPDM RACEOTH (Race Other): not mapped" in err
    lines = [json.loads(line) for line in out.splitlines()]
    groups = [r for r in lines if r["resourceType"] == "Group"]  # Y only: no SAFETY Group
    assert [g["identifier"][0]["value"] for g in groups] == ["ITT"]
    assert groups[0]["member"] == [{"entity": {"reference": f"Patient/{patient['id']}"}}]
