"""Operations: `$validate`, ConceptMaps (read-only, from mappings/) with search and
`$translate`, and `$ingest` of source files like `fhir-adapter load`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from gateway_fixtures import FHIR, app, client, database_url, patient, post, unique_system

from fhir_adapter import conceptmaps
from fhir_adapter.store.canonical import loads

__all__ = ["app", "client", "database_url"]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEVERITY = "https://fhir-adapter.dev/fhir/ConceptMap/sdtm-aesev-severity"


def _params(body: dict) -> dict:
    return {p["name"]: p for p in body["parameter"]}


def test_validate_reports_issues_with_paths_and_ok(client) -> None:
    bad = client.post("/fhir/Patient/$validate", json={"resourceType": "Patient",
                                                       "gender": "robot"},
                      headers={"Content-Type": FHIR})
    assert bad.status_code == 200
    issues = loads(bad.data)["issue"]
    assert any("Patient.gender" in i.get("expression", []) for i in issues)
    wrapped = client.post("/fhir/Patient/$validate", headers={"Content-Type": FHIR}, json={
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]})
    assert loads(wrapped.data)["issue"][0]["severity"] == "information"
    rid = loads(post(client, patient(unique_system())).data)["id"]
    stored = loads(client.get(f"/fhir/Patient/{rid}/$validate").data)
    assert stored["issue"][0]["severity"] == "information"


def test_concept_maps_read_and_search(client) -> None:
    cm = loads(client.get("/fhir/ConceptMap/sdtm-aesev-severity").data)
    assert cm.pop("meta")["versionId"] == "1"
    assert cm == conceptmaps.get_map("sdtm-aesev-severity")
    assert client.get("/fhir/R5/ConceptMap/sdtm-aesev-severity").status_code == 406
    assert client.get("/fhir/ConceptMap/nope").status_code == 404
    everything = loads(client.get("/fhir/ConceptMap?_count=0").data)["total"]
    assert everything == len(conceptmaps.all_maps())
    by_url = loads(client.get(f"/fhir/ConceptMap?url={SEVERITY}").data)
    assert [e["resource"]["id"] for e in by_url["entry"]] == ["sdtm-aesev-severity"]
    by_code = loads(client.get("/fhir/ConceptMap?source-code=MODERATE&target-code=moderate")
                    .data)
    assert "sdtm-aesev-severity" in {e["resource"]["id"] for e in by_code["entry"]}
    assert client.get("/fhir/ConceptMap?name:below=x").status_code == 400


def test_concept_maps_are_read_only(client) -> None:
    for method in ("POST", "PUT", "DELETE"):
        url = "/fhir/ConceptMap" if method == "POST" else "/fhir/ConceptMap/sdtm-aesev-severity"
        r = client.open(url, method=method, json=conceptmaps.get_map("sdtm-aesev-severity"),
                        headers={"Content-Type": FHIR})
        assert r.status_code == 405, method


def test_translate_r4_and_r5(client) -> None:
    r4 = loads(client.get(f"/fhir/ConceptMap/$translate?url={SEVERITY}&code=SEVERE").data)
    p = _params(r4)
    assert p["result"]["valueBoolean"] is True
    match = {part["name"]: part for part in p["match"]["part"]}
    assert match["equivalence"]["valueCode"] == "equivalent"
    assert match["concept"]["valueCoding"]["code"] == "severe"
    r5 = loads(client.get("/fhir/R5/ConceptMap/sdtm-aesev-severity/$translate?code=MILD")
               .data)
    match5 = {part["name"]: part for part in _params(r5)["match"]["part"]}
    assert match5["relationship"]["valueCode"] == "equivalent"
    posted = client.post("/fhir/ConceptMap/$translate", headers={"Content-Type": FHIR}, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "url", "valueUri": SEVERITY},
            {"name": "coding", "valueCoding": {"code": "MODERATE"}}]})
    assert _params(loads(posted.data))["result"]["valueBoolean"] is True
    none = loads(client.get(f"/fhir/ConceptMap/$translate?url={SEVERITY}&code=HUGE").data)
    assert _params(none)["result"]["valueBoolean"] is False
    assert client.get("/fhir/ConceptMap/$translate?code=X").status_code == 400


def test_ingest_the_seed_study_twice(client) -> None:
    data = (EXAMPLES / "NCT05003921.json").read_bytes()
    first = client.post("/fhir/$ingest?kind=study", data=data,
                        headers={"Content-Type": "application/json"})
    assert first.status_code == 200, first.data
    counts = {k: v["valueInteger"] for k, v in _params(loads(first.data)).items()
              if k in ("created", "updated", "unchanged")}
    assert sum(counts.values()) > 0
    again = client.post("/fhir/$ingest?kind=study", data=data,
                        headers={"Content-Type": "application/json"})
    second = _params(loads(again.data))
    assert second["unchanged"]["valueInteger"] == sum(counts.values())
    assert second["created"]["valueInteger"] == second["updated"]["valueInteger"] == 0
    found = loads(client.get("/fhir/ResearchStudy?identifier=NCT05003921").data)
    assert found["total"] == 1


def test_ingest_adverse_events_as_multipart(client) -> None:
    source = EXAMPLES / "NCT05003921.adverse-events.csv"
    if not source.exists():
        pytest.skip("examples/NCT05003921.adverse-events.csv not present")
    with source.open("rb") as fh:
        r = client.post("/fhir/$ingest?kind=adverse-events&study=NCT05003921",
                        data={"file": (fh, source.name)}, content_type="multipart/form-data")
    assert r.status_code == 200, r.data
    types = {p["part"][0]["valueCode"] for p in loads(r.data)["parameter"]
             if p["name"] == "resourceType"}
    assert "AdverseEvent" in types


def test_ingest_errors(client) -> None:
    assert client.post("/fhir/$ingest", data=b"{}",
                       headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/fhir/$ingest?kind=study&colour=red", data=b"{}",
                       headers={"Content-Type": "application/json"}).status_code == 400
    broken = client.post("/fhir/$ingest?kind=study", data=b'{"protocolSection": 7}',
                         headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    outcome = loads(broken.data)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "fhir-adapter-ingest" not in outcome["issue"][0]["diagnostics"]


def test_ingest_names_each_bad_row(client) -> None:
    """An adverse-event upload with bad rows: 422, the file's summary first, then one issue
    per bad row (uploaded file name, row, field), and nothing stored."""
    header = "study_id,subject_id,event_id,verbatim_term,severity,serious,outcome,onset_date\n"
    rows = "".join(f"NCT05003921,ING-{n:03d},E1,Nausea,{'extreme' if n % 2 else 'mild'},N,"
                   "recovered/resolved,2023-01-11\n" for n in range(1, 6))
    before = loads(client.get("/fhir/AdverseEvent?_summary=count").data)["total"]
    r = client.post("/fhir/$ingest?kind=adverse-events",
                    data={"file": (io.BytesIO((header + rows).encode()), "ae.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 422, r.data
    issues = [i["diagnostics"] for i in loads(r.data)["issue"]]
    assert issues[0].endswith("3 invalid row(s): nothing written "
                              "(--skip-invalid maps the valid rows)")
    assert [i.split(":")[0] for i in issues[1:]] == [
        f"ae.csv, row {n}, field severity" for n in (1, 3, 5)]
    assert not any("fhir-adapter-ingest" in i for i in issues)
    assert loads(client.get("/fhir/AdverseEvent?_summary=count").data)["total"] == before
