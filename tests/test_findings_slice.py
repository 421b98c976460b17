"""The CDISC pilot slice with one row of each inconsistency added (the full pilot's kind:
AESER N with AESDTH Y and AEOUT FATAL, ...): every row maps through `map`, `load` and
`$ingest`, the fatal outcome and every Y flag are in the output, the report lists each
inconsistent row, nothing valid is refused by default, and `--strict` refuses."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import fixture_path
from gateway_fixtures import app, client, database_url
from store_backends import backend, postgres_database, store_url  # noqa: F401 (fixtures)
from test_enrollment_cli import run
from test_findings import criteria, write_csv

from fhir_adapter.findings import SYSTEM
from fhir_adapter.store import open_store
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.canonical import loads

__all__ = ["app", "client", "database_url"]
PILOT = ("sdtm", "cdiscpilot01-slice")
# Added AE rows: AESEQ -> (changes to a copy of the slice's first row, the rules it breaks)
ADDED_AE: dict[str, tuple[dict[str, str], set[str]]] = {
    "91": ({"AESER": "N", "AESDTH": "Y", "AEOUT": "FATAL", "AESHOSP": "Y"},
           {"ae-not-serious-criterion-met", "ae-fatal-not-serious"}),
    "92": ({"AESER": "", "AESLIFE": "Y"}, {"ae-seriousness-blank-criterion-met"}),
    "93": ({"AESER": "Y", "AESDTH": "Y", "AEOUT": "RECOVERED/RESOLVED"},
           {"ae-death-outcome-not-fatal"}),
    "94": ({"AESER": "Y", "AESHOSP": "Y", "AEOUT": "FATAL"}, {"ae-fatal-outcome-death-no"}),
    "95": ({}, {"ae-supplemental-conflict"}),  # SUPPAE says another AESEV
}
SUPPAE = ("STUDYID,RDOMAIN,USUBJID,IDVAR,IDVARVAL,QNAM,QLABEL,QVAL\n"
          "CDISCPILOT01,AE,01-701-1015,AESEQ,95,AESEV,Severity/Intensity,SEVERE\n"
          "CDISCPILOT01,AE,01-701-1015,AESEQ,1,AETRTEM,Treatment Emergent Flag,Y\n")
# Added DM subjects: USUBJID -> (changes to a copy of the first DM row, the rule)
ADDED_DM = {
    "01-701-9991": ({"DTHDTC": "2014-03-01", "DTHFL": ""}, "dm-death-date-without-flag"),
    "01-701-9992": ({"DTHFL": ""}, "dm-death-disposition-without-flag"),
    "01-701-9993": ({"RFENDTC": "2013-12-01"}, "dm-reference-start-after-end"),
    "01-701-9994": ({"RFICDTC": "2014-01-05"}, "dm-consent-after-start"),
}
NCIT_DEATH, NCIT_HOSP = "C48275", "C83052"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Any]:
    """The slice's AE, DM and DS with the inconsistent rows appended, and our SUPPAE."""
    ae = _read(fixture_path(*PILOT, "ae.csv"))
    added_rows = {}
    for seq, (changes, _) in ADDED_AE.items():
        ae.append(ae[0] | {"AESEQ": seq} | changes)
        added_rows[seq] = len(ae)  # the CSV data row number
    dm = _read(fixture_path(*PILOT, "dm.csv"))
    ds = _read(fixture_path(*PILOT, "ds.csv"))
    for subject, (changes, _) in sorted(ADDED_DM.items()):
        dm.append(dm[0] | {"USUBJID": subject, "SUBJID": subject[-4:]} | changes)
    ds.append(ds[0] | {"USUBJID": "01-701-9992", "DSSEQ": "1", "DSTERM": "DIED",
                       "DSDECOD": "DEATH"})
    supp = tmp_path / "suppae.csv"
    supp.write_text(SUPPAE, encoding="utf-8")
    return {"ae": write_csv(tmp_path / "ae.csv", ae), "ae_rows": len(ae), "added": added_rows,
            "suppae": supp, "dm": write_csv(tmp_path / "dm.csv", dm), "subjects": len(dm),
            "ds": write_csv(tmp_path / "ds.csv", ds)}


def _report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_map_adverse_events_keeps_every_row(sources: dict[str, Any], version: str,
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out, report = tmp_path / "out.ndjson", tmp_path / "report.jsonl"
    code, _, err = run(["map", "adverse-events", str(sources["ae"]), "--supplemental",
                        str(sources["suppae"]), "--fhir-version", version, "--ndjson",
                        "-o", str(out), "--report", str(report)], capsys)
    assert code == 0, err
    events = [json.loads(line) for line in out.read_text().splitlines()]
    events = [e for e in events if e["resourceType"] == "AdverseEvent"]
    assert len(events) == sources["ae_rows"]  # every row, the inconsistent ones included
    by_key = {_key(e, version): e for e in events}
    by_seq = {k.split("|")[1]: e for k, e in by_key.items() if k.startswith("01-701-1015|")}
    death = by_seq["91"]
    assert death["seriousness"]["coding"][0]["code"].lower() == "non-serious"
    outcome = death["outcome"] if version == "R4" else death["outcome"][0]
    assert outcome["coding"][0]["code"] == ("fatal" if version == "R4" else "C48275")
    assert criteria(death)[NCIT_DEATH] is True and criteria(death)[NCIT_HOSP] is True
    tagged = {k.split("|")[1] for k, e in by_key.items() if "meta" in e}
    assert tagged == set(ADDED_AE)  # the slice's own rows have no finding
    emergent = [x for x in by_seq["1"]["extension"] if x["url"].endswith("/treatment-emergent")]
    assert emergent == [{"url": emergent[0]["url"], "valueBoolean": True}]
    lines = _report(report)
    found = {(line["row"], line["rule"]) for line in lines}
    assert found == {(sources["added"][seq], rule) for seq, (_, rules) in ADDED_AE.items()
                     for rule in rules}
    assert all(Path(line["file"]).name == "ae.csv" and line["field"] for line in lines)
    assert "findings" in err and "ae-not-serious-criterion-met 1" in err


def test_map_strict_refuses_and_writes_nothing(sources: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    code, _, err = run(["map", "adverse-events", str(sources["ae"]), "--supplemental",
                        str(sources["suppae"]), "--strict", "-o", str(out)], capsys)
    assert code == 2 and not out.exists()
    for seq, row in sources["added"].items():
        assert f"row {row}, field" in err, seq
    code, _, err = run(["map", "enrollments", str(sources["dm"]), "--disposition",
                        str(sources["ds"]), "--strict", "-o", str(out)], capsys)
    assert code == 2 and not out.exists() and "--strict" in err


def test_map_enrollments_keeps_every_subject(sources: dict[str, Any], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out, report = tmp_path / "out.ndjson", tmp_path / "report.jsonl"
    code, _, err = run(["map", "enrollments", str(sources["dm"]), "--disposition",
                        str(sources["ds"]), "--ndjson", "-o", str(out), "--report", str(report)],
                       capsys)
    assert code == 0, err
    resources = [json.loads(line) for line in out.read_text().splitlines()]
    patients = {p["identifier"][0]["value"]: p for p in resources
                if p["resourceType"] == "Patient"}
    assert len(patients) == sources["subjects"]
    assert patients["01-701-9991"]["deceasedDateTime"] == "2014"
    assert patients["01-701-9992"]["deceasedBoolean"] is True
    rules = {line["rule"] for line in _report(report)}
    assert rules == {rule for _, rule in ADDED_DM.values()}
    for subject, (_, rule) in ADDED_DM.items():
        assert patients[subject]["meta"]["tag"][0]["code"] == rule


def test_load_reports_and_tags_on_both_stores(sources: dict[str, Any], store_url: str,  # noqa: F811
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.jsonl"
    code, out, err = run(["load", "adverse-events", str(sources["ae"]), "--supplemental",
                          str(sources["suppae"]), "--database", store_url, "--report",
                          str(report), "--no-progress"], capsys)
    assert code == 0, err
    assert f"AdverseEvent: {sources['ae_rows']} created" in out
    assert "data-quality findings" in out and "ae-fatal-not-serious 1" in out
    assert {line["row"] for line in _report(report)} == set(sources["added"].values())
    code, out, err = run(["load", "enrollments", str(sources["dm"]), "--disposition",
                          str(sources["ds"]), "--database", store_url, "--no-progress"], capsys)
    assert code == 0, err
    store = open_store(store_url)
    try:
        for version in ("R4", "R5"):
            def total(rtype: str, tag: str, v: str = version) -> int:
                result = store.search(SearchQuery(rtype, v, [("_tag", tag)]))
                return result.total  # type: ignore[return-value]

            assert total("AdverseEvent", f"{SYSTEM}|") == len(ADDED_AE)
            assert total("AdverseEvent", f"{SYSTEM}|ae-fatal-not-serious") == 1
            assert total("AdverseEvent", "ae-supplemental-conflict") == 1
            assert total("Patient", f"{SYSTEM}|dm-consent-after-start") == 1
            assert total("ResearchSubject", f"{SYSTEM}|") == len(ADDED_DM)
    finally:
        store.close()
    code, _, err = run(["load", "adverse-events", str(sources["ae"]), "--supplemental",
                        str(sources["suppae"]), "--database", store_url, "--strict",
                        "--no-progress"], capsys)
    assert code == 2 and "--strict" in err


def test_ingest_returns_findings_and_strict_refuses(sources: dict[str, Any], client) -> None:
    study = "CDISCPILOT01-FINDINGS"  # ids of its own: apart from other tests' pilot loads

    def ingest(strict: bool) -> Any:
        files = {"file": (io.BytesIO(sources["ae"].read_bytes()), "ae.csv"),
                 "supplemental": (io.BytesIO(sources["suppae"].read_bytes()), "suppae.csv")}
        query = f"kind=adverse-events&study={study}" + ("&strict=true" if strict else "")
        return client.post(f"/fhir/$ingest?{query}", data=files,
                           content_type="multipart/form-data")

    refused = ingest(strict=True)
    assert refused.status_code == 422
    diagnostics = " ".join(i["diagnostics"] for i in loads(refused.data)["issue"])
    assert "ae-not-serious-criterion-met" in diagnostics
    assert "fhir-adapter-ingest" not in diagnostics
    r = ingest(strict=False)
    assert r.status_code == 200, r.data
    params = {p["name"]: p for p in loads(r.data)["parameter"]}
    counts = {p["name"]: p["valueInteger"] for p in params["findings"]["part"]}
    assert counts == {rule: 1 for _, rules in ADDED_AE.values() for rule in rules}
    issues = params["outcome"]["resource"]["issue"]
    assert all(i["severity"] == "warning" for i in issues)
    rows = {(i["diagnostics"].split(",")[1].strip(), i["details"]["coding"][0]["code"])
            for i in issues}
    assert rows == {(f"row {sources['added'][seq]}", rule) for seq, (_, rules) in ADDED_AE.items()
                    for rule in rules}
    assert all(i["diagnostics"].startswith("ae.csv, row") for i in issues)
    for path in ("/fhir", "/fhir/R5"):
        found = loads(client.get(f"{path}/AdverseEvent?_tag={SYSTEM}|ae-fatal-not-serious"
                                 f"&study=ResearchStudy/{_study_id(study)}").data)
        assert found["total"] == 1
        event = found["entry"][0]["resource"]
        assert _key(event, "R5" if path.endswith("R5") else "R4").endswith("|91")


def _key(event: dict[str, Any], version: str) -> str:
    """USUBJID|AESEQ: the AdverseEvent's identifier (0..1 in R4, a list in R5)."""
    identifier = event["identifier"][0] if version == "R5" else event["identifier"]
    return str(identifier["value"])


def _study_id(study: str) -> str:
    from fhir_adapter import ids

    return ids.study_resource_id(study)


def test_population_groups_are_searchable_on_both_stores(store_url: str,  # noqa: F811
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """SUPPDM populations loaded as Groups: found by code, identifier and member, R4 and R5;
    a second load changes nothing (deterministic ids)."""
    from golden import GOLDEN

    from fhir_adapter.mapping.population import POPULATION_SYSTEM

    folder = GOLDEN / "enrollment"
    argv = ["load", "enrollments", str(folder / "findings.dm.input.csv"), "--disposition",
            str(folder / "findings.ds.input.csv"), "--supplemental",
            str(folder / "findings.suppdm.input.csv"), "--database", store_url, "--no-progress"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "Group: 3 created" in out
    code, out, err = run(argv, capsys)
    assert "Group: 0 created, 0 updated, 3 unchanged" in out
    store = open_store(store_url)
    try:
        for version in ("R4", "R5"):
            def ids_of(params: list[tuple[str, str]], v: str = version) -> list[str]:
                found = store.search(SearchQuery("Group", v, params))
                return [loads(m.json(v))["identifier"][0]["value"] for m in found.matches]

            assert ids_of([("code", f"{POPULATION_SYSTEM}|ITT")]) == ["ITT"]
            assert ids_of([("identifier", "SAFETY")]) == ["SAFETY"]
            patient = store.search(SearchQuery("Patient", version, [("identifier", "S1-002")]))
            pid = patient.matches[0].id
            assert sorted(ids_of([("member", f"Patient/{pid}")])) == ["ITT", "SAFETY"]
    finally:
        store.close()
