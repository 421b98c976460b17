"""SDTM AE (+ SUPPAE) -> AdverseEvent: the CDISC pilot slice (XPT and CSV), golden files,
counts against the source, synthetic SUPPAE and bad rows."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from conftest import fixture_path
from golden import GOLDEN, check_golden

from fhir_adapter.errors import InputError
from fhir_adapter.pipeline.adverse_events import LoadReport, adverse_event_resources
from fhir_adapter.sources.adverse_event import AdverseEventRecord, open_adverse_events
from fhir_adapter.validation import validate

PILOT = ("sdtm", "cdiscpilot01-slice")
AE_HEADER = ("STUDYID,DOMAIN,USUBJID,AESEQ,AESPID,AETERM,AEDECOD,AESEV,AESER,AEACN,AEREL,"
             "AEOUT,AESDTH,AESHOSP,AESTDTC,AEENDTC")


def load(path: Path, version: str, **options) -> tuple[list[dict], LoadReport]:
    report = LoadReport()
    return list(adverse_event_resources(path, version, report, **options)), report


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(path: Path, *lines: str) -> Path:
    return write(path, "\n".join((AE_HEADER, *lines)) + "\n")


@pytest.fixture(scope="module")
def pilot_csv() -> Path:
    return fixture_path(*PILOT, "ae.csv")


@pytest.fixture(scope="module")
def pilot_xpt() -> Path:
    return fixture_path(*PILOT, "ae.xpt")


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_pilot_xpt_and_csv_map_identically(pilot_csv: Path, pilot_xpt: Path,
                                           version: str) -> None:
    from_csv, _ = load(pilot_csv, version)
    from_xpt, _ = load(pilot_xpt, version)
    assert from_csv == from_xpt


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_pilot_one_valid_adverse_event_per_row(pilot_csv: Path, version: str) -> None:
    resources, report = load(pilot_csv, version)
    with open(pilot_csv, newline="", encoding="utf-8") as fh:
        source = list(csv.DictReader(fh))
    events = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    assert len(source) == 51 and len(events) == len(source)
    assert len({e["id"] for e in events}) == len(events)
    for resource in resources:
        assert validate(resource, version) == [], resource["id"]
    assert len(report.subjects) == len({r["USUBJID"] for r in source})


def _codes(resource: dict, version: str) -> dict[str, str | None]:
    def code(cc: dict | None) -> str | None:
        return cc["coding"][0]["code"] if cc else None

    if version == "R4":
        severity, outcome = resource.get("severity"), resource.get("outcome")
    else:
        severity = next((e["valueCodeableConcept"] for e in resource.get("extension", [])
                         if e["url"].endswith("/ae-severity")), None)
        outcome = (resource.get("outcome") or [None])[0]
    return {"AESER": code(resource.get("seriousness")), "AESEV": code(severity),
            "AEOUT": code(outcome)}


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_pilot_counts_equal_the_source(pilot_csv: Path, version: str) -> None:
    """Per source value, as many events carry its FHIR code; no two values share a code."""
    resources, _ = load(pilot_csv, version)
    events = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    with open(pilot_csv, newline="", encoding="utf-8") as fh:
        source = list(csv.DictReader(fh))
    for column in ("AESER", "AESEV", "AEOUT"):
        pairs = Counter((row[column], _codes(event, version)[column])
                        for row, event in zip(source, events, strict=True))
        by_value = Counter(row[column] for row in source)
        by_code = Counter(_codes(event, version)[column] for event in events)
        assert len({v for v, _ in pairs}) == len(pairs) == len({c for _, c in pairs}), pairs
        for value, code in pairs:
            assert by_value[value] == by_code[code] == pairs[(value, code)]
    assert Counter(e["seriousness"]["coding"][0]["code"] for e in events) == Counter(
        {"Non-serious" if version == "R4" else "non-serious": 51})


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_pilot_golden(pilot_xpt: Path, version: str, update_golden: bool) -> None:
    resources, report = load(pilot_xpt, version)
    check_golden(GOLDEN / "adverse_event" / f"cdiscpilot01-ae.{version.lower()}.expected.json",
                 resources, update_golden)
    assert "AESTDY" in report.source.warnings[0]  # unmapped columns are named, not dropped


def test_pilot_blank_values_stay_absent(pilot_csv: Path) -> None:
    resources, _ = load(pilot_csv, "R5")
    ongoing = [r for r in resources if "end" not in r["occurrencePeriod"]]
    assert ongoing and all(r["status"] == "in-progress" for r in ongoing
                           if r["outcome"][0]["coding"][0]["code"] == "C49494")
    for r in resources:  # pilot terms have no MedDRA codes: no codings are made up
        assert "coding" not in r["code"]
        assert not any("ae-grade" in e["url"] for e in r.get("extension", []))


def test_study_option_keys_the_study_and_subjects(pilot_csv: Path) -> None:
    from fhir_adapter import ids

    resources, _ = load(pilot_csv, "R4", study="NCT00000001")
    first = resources[0]
    study = ids.study_resource_id("NCT00000001")
    assert first["study"] == [{"reference": f"ResearchStudy/{study}"}]
    system = ids.subject_system("NCT00000001")
    assert first["subject"]["reference"] == \
        f"Patient/{ids.resource_id('Patient', system, '01-701-1015')}"
    assert first["id"] == ids.resource_id("AdverseEvent", system, "01-701-1015|1")


SUPPAE = """STUDYID,RDOMAIN,USUBJID,IDVAR,IDVARVAL,QNAM,QLABEL,QVAL,QORIG,QEVAL
S1,AE,S1-001,AESEQ,1.0,AEACN1,Action Taken 1,DOSE REDUCED,CRF,
S1,AE,S1-001,AESEQ,1.0,AEACN2,Action Taken 2,DRUG INTERRUPTED,CRF,
S1,AE,S1-001,AESEQ,1,AETOXGR,Toxicity Grade,3,CRF,
S1,AE,S1-001,AESEQ,1,AETRTEM,Treatment Emergent Flag,Y,DERIVED,
S1,AE,S1-002,AESEQ,7,AETRTEM,Treatment Emergent Flag,Y,DERIVED,
S1,DM,S1-001,,,RACEOTH,Race Other,X,CRF,
"""


def test_suppae_is_folded_into_its_parent_rows(tmp_path: Path) -> None:
    ae = rows(tmp_path / "ae.csv",
              "S1,AE,S1-001,1.0,L1,HEADACHE,Headache,SEVERE,N,MULTIPLE,POSSIBLE,"
              "RECOVERED/RESOLVED,N,N,2024-03-01,2024-03-04")
    supp = write(tmp_path / "suppae.csv", SUPPAE)
    for version, base in (("R4", "ae-research-backport-ig"), ("R5", "ae-research-ig")):
        resources, report = load(ae, version, supplemental=supp)
        event = resources[0]
        grade = [e for e in event["extension"] if e["url"].endswith("/ae-grade")]
        assert base in grade[0]["url"]
        assert grade[0]["valueCodeableConcept"]["coding"][0]["code"] == "C41340"
        if version == "R5":
            actions = [m["itemCodeableConcept"]["coding"][0]["code"]
                       for m in event["mitigatingAction"]]
        else:
            actions = [e["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                       for e in event["extension"] if e["url"].endswith("/mitigating-action")]
        assert actions == ["DOSE REDUCED", "DRUG INTERRUPTED"]
        emergent = [e["valueBoolean"] for e in event["extension"]
                    if e["url"].endswith("/treatment-emergent")]
        assert emergent == [True]  # SUPPAE AETRTEM, in both versions
        warnings = " ".join(report.source.warnings)
        assert "AETRTEM" not in warnings and "another domain" in warnings
        assert "1 SUPPAE record key(s) match no AE row" in warnings


def test_suppae_contradicting_the_parent_is_a_finding(tmp_path: Path) -> None:
    header = AE_HEADER + ",AETOXGR"
    ae = write(tmp_path / "ae.csv", header + "\nS1,AE,S1-001,1,,HEADACHE,,MILD,N,,,,,,"
               "2024-03-01,,2\n")
    supp = write(tmp_path / "suppae.csv", SUPPAE)
    items = list(open_adverse_events(ae, supp).records)
    record = items[0]
    assert isinstance(record, AdverseEventRecord) and record.grade == 2  # the AE row's value
    [finding] = record.findings
    assert (finding.row, finding.field, finding.rule) == (1, "AETOXGR",
                                                          "ae-supplemental-conflict")
    assert "'2'" in finding.message and "'3'" in finding.message


@pytest.mark.parametrize(("line", "column", "expected"), [
    ("S1,AE,S1-001,1,,HEADACHE,,EXTREME,N,,,,,,2024-03-01,", "AESEV", "MILD, MODERATE, SEVERE"),
    ("S1,AE,S1-001,1,,HEADACHE,,MILD,N,,,,,,2024-02-30,", "AESTDTC", "01-29"),
    ("S1,AE,S1-001,1,,HEADACHE,,MILD,N,,,,,,2024-03-05,2024-03-01", "AEENDTC", "before"),
    ("S1,AE,S1-001,,,HEADACHE,,MILD,N,,,,,,2024-03-01,", "AESEQ", "missing"),
    ("S1,AE,S1-001,1,,,,MILD,N,,,,,,2024-03-01,", "AETERM", "missing"),
    ("S1,AE,S1-001,1,,HEADACHE,,MILD,X,,,,,,2024-03-01,", "AESER", "Y, N, U or NA"),
    ("S1,AE,S1-001,1,,HEADACHE,,MILD,N,,MAYBE,,,,2024-03-01,", "AEREL", "POSSIBLE"),
    ("S1,AE,S1-001,1,,HEADACHE,,MILD,N,STOPPED,,,,,2024-03-01,", "AEACN", "DRUG WITHDRAWN"),
    (",AE,S1-001,1,,HEADACHE,,MILD,N,,,,,,2024-03-01,", "STUDYID", "missing"),
])
def test_bad_rows_name_file_row_and_column(tmp_path: Path, line: str, column: str,
                                           expected: str) -> None:
    path = rows(tmp_path / "ae.csv", "S1,AE,S1-000,1,,NAUSEA,,MILD,N,,,,,,2024-03-01,", line)
    items = list(open_adverse_events(path).records)
    assert isinstance(items[0], AdverseEventRecord)
    error = items[1]
    assert isinstance(error, InputError)
    assert (error.file, error.row, error.field_name) == (str(path), 2, column)
    assert expected in error.message
    assert str(error).startswith(f"{path}, row 2, field {column}: ")


def test_unknown_or_not_assessed_flags_are_absent(tmp_path: Path) -> None:
    path = rows(tmp_path / "ae.csv", "S1,AE,S1-001,1,,HEADACHE,,,U,,,,NA,u,2024-03-01,")
    record = next(iter(open_adverse_events(path).records))
    assert isinstance(record, AdverseEventRecord)
    assert record.serious is None and record.criteria == {} and record.severity is None


def test_sdtm_partial_dates_keep_their_known_prefix(tmp_path: Path) -> None:
    path = rows(tmp_path / "ae.csv", "S1,AE,S1-001,1,,HEADACHE,,MILD,N,,,,,,2024---14,2024-05")
    resources, report = load(path, "R5")
    assert resources[0]["occurrencePeriod"] == {"start": "2024", "end": "2024-05"}
    assert any("AESTDTC has unknown parts" in w for w in report.warnings)


def test_format_not_recognised(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match="cannot tell the format"):
        open_adverse_events(path)


def test_accepted_terms_follow_the_site_concept_maps(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Remembered terms are dropped when the ConceptMaps are re-read (FHIR_ADAPTER_MAPPINGS)."""
    import json

    from fhir_adapter import conceptmaps
    from fhir_adapter.sources.adverse_event_sdtm import _term
    from fhir_adapter.sources.tabular import Row

    row = Row("ae.csv", 1, {})
    assert _term(row, "AESEV", "mild", "severity") == "MILD"
    severity = conceptmaps.get_map("sdtm-aesev-severity")
    group = severity["group"][0]
    site = dict(severity, group=[dict(group, element=[
        e for e in group["element"] if e["code"] != "MILD"])])
    (tmp_path / "severity.json").write_text(json.dumps(site))
    monkeypatch.setenv("FHIR_ADAPTER_MAPPINGS", str(tmp_path))
    conceptmaps.all_maps.cache_clear()
    conceptmaps._index.cache_clear()
    try:
        with pytest.raises(InputError, match="is not one of"):
            _term(row, "AESEV", "mild", "severity")
    finally:
        monkeypatch.delenv("FHIR_ADAPTER_MAPPINGS")
        conceptmaps.all_maps.cache_clear()
        conceptmaps._index.cache_clear()
    assert _term(row, "AESEV", "mild", "severity") == "MILD"


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_pilot_summary_counts_what_fhir_to_record_reads(pilot_csv: Path, version: str) -> None:
    from fhir_adapter.mapping.adverse_event_inverse import fhir_to_record, safety_facts

    resources, _ = load(pilot_csv, version)
    for event in (r for r in resources if r["resourceType"] == "AdverseEvent"):
        facts, summary = fhir_to_record(event, version), safety_facts(event, version)
        assert summary == {k: facts[k] for k in summary}
