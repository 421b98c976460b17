"""Issue 18's repros, one regression test each: hostile and odd requests get a 4xx
OperationOutcome (naming the limit where one applies), never a 500, a silent cut or a silently
widened result; nothing is stored from a refused request. Both stores."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gateway_fixtures import FHIR, app, client, database_url, patient, post, unique_system
from loopback import wsgi

from fhir_adapter.gateway import create_app
from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]  # fixtures


def outcome(response: Any, status: int) -> dict[str, Any]:
    """The response's OperationOutcome, checked to come with `status`."""
    assert response.status_code == status, response.data[:500]
    body = loads(response.data)
    assert body["resourceType"] == "OperationOutcome"
    return body


def diagnostics(response: Any, status: int) -> str:
    return " ".join(i["diagnostics"] for i in outcome(response, status)["issue"])


def count(client: FlaskClient, query: str) -> int:
    found = client.get(f"/fhir/{query}&_summary=count")
    assert found.status_code == 200, found.data
    return int(loads(found.data)["total"])


def _nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(depth):
        inner = {"url": "http://example.org/nest", "extension": [inner]}
    return inner


@pytest.mark.parametrize("depth", [150, 400, 1100])
def test_deep_json_is_413_naming_the_limit(client: FlaskClient, depth: int) -> None:
    system = unique_system()
    body = patient(system, extension=[_nested(depth)])
    raw = json.dumps(body).encode() if depth < 250 else (
        b'{"resourceType":"Patient","identifier":[{"system":"' + system.encode()
        + b'","value":"p1"}],"extension":' + b"[" * depth + b"]" * depth + b"}")
    for method, path in (("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/deep1"),
                         ("POST", "/fhir/Patient/$validate")):
        answer = client.open(path, method=method, data=raw, headers={"Content-Type": FHIR})
        assert "FHIR_ADAPTER_MAX_DEPTH" in diagnostics(answer, 413)
    bundle = b'{"resourceType":"Bundle","type":"transaction","entry":[{"request":' \
             b'{"method":"POST","url":"Patient"},"resource":' + raw + b"}]}"
    assert "FHIR_ADAPTER_MAX_DEPTH" in diagnostics(
        client.post("/fhir", data=bundle, headers={"Content-Type": FHIR}), 413)
    ingest = client.post("/fhir/$ingest?kind=bundle", data=raw,
                         headers={"Content-Type": "application/fhir+ndjson"})
    assert "MAX_DEPTH" in diagnostics(ingest, 422) or "too deep" in diagnostics(ingest, 422)
    assert count(client, f"Patient?identifier={system}|") == 0


def test_limits_are_settings(database_url: str, tmp_path) -> None:
    app = create_app({"DATABASE_URL": database_url, "MAX_DEPTH": 8, "MAX_PARAMS": 3,
                      "MAX_OFFSET": 10, "MAX_STRING_LENGTH": 50, "MAX_ENTRIES": 1,
                      "MAX_URL_LENGTH": 300, "EXPORT_DIR": str(tmp_path)})
    try:
        c = app.test_client()
        assert "FHIR_ADAPTER_MAX_DEPTH" in diagnostics(post(c, patient(
            "urn:x", extension=[_nested(8)])), 413)
        for fast in ({}, {"Prefer": "return=representation"}):  # the fast path and Flask's
            assert "FHIR_ADAPTER_MAX_OFFSET" in diagnostics(
                c.get("/fhir/Patient?_offset=11", headers=fast), 400)
            assert "FHIR_ADAPTER_MAX_PARAMS" in diagnostics(
                c.get("/fhir/Patient?_id=a&_id=b&_id=c&_id=d", headers=fast), 400)
            assert "FHIR_ADAPTER_MAX_STRING_LENGTH" in diagnostics(
                c.get("/fhir/Patient?name=" + "x" * 51, headers=fast), 400)
            assert "FHIR_ADAPTER_MAX_URL_LENGTH" in diagnostics(
                c.get("/fhir/Patient?name=" + "x" * 300, headers=fast), 414)
        assert "FHIR_ADAPTER_MAX_STRING_LENGTH" in diagnostics(post(c, patient(
            "urn:x", gender="x" * 51)), 413)
        entry = {"request": {"method": "POST", "url": "Patient"},
                 "resource": patient("urn:x")}
        assert "FHIR_ADAPTER_MAX_ENTRIES" in diagnostics(c.post("/fhir", json={
            "resourceType": "Bundle", "type": "batch", "entry": [entry, entry]}), 413)
    finally:
        app.extensions["fhir_store"].close()


def _chunked(host: str, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request("POST", path, body=(body[i:i + 4096] for i in range(0, len(body), 4096)),
                     headers={"Content-Type": "application/fhir+ndjson"}, encode_chunked=True)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def test_chunked_body_over_the_limit_is_refused_whole(database_url: str, tmp_path) -> None:
    """A chunked upload (no Content-Length) over MAX_CONTENT_LENGTH is 413 and stores
    nothing; one cut at the limit on a line break used to store its first part and answer
    200. A real HTTP server: only a server decodes the chunks."""
    system = unique_system()
    lines = [dumps({"resourceType": "Patient", "id": f"chunk-{n}", "identifier": [
        {"system": system, "value": str(n)}]}) for n in range(200)]
    body = b"\n".join(lines) + b"\n"
    limit = body.index(b"\n", len(body) // 2) + 1  # the cut would land on a line break
    app = create_app({"DATABASE_URL": database_url, "MAX_CONTENT_LENGTH": limit,
                      "EXPORT_DIR": str(tmp_path)})
    try:
        with wsgi(app) as root:
            host = root.removeprefix("http://")
            status, refused = _chunked(host, "/fhir/$ingest?kind=bundle", body)
            assert status == 413, refused
            assert "FHIR_ADAPTER_MAX_CONTENT_LENGTH" in loads(refused)["issue"][0]["diagnostics"]
            assert count(app.test_client(), f"Patient?identifier={system}|") == 0
            status, done = _chunked(host, "/fhir/$ingest?kind=bundle", body[:limit])
            assert status == 200, done
            assert count(app.test_client(), f"Patient?identifier={system}|") == \
                body[:limit].count(b"\n")
    finally:
        app.extensions["fhir_store"].close()


@pytest.mark.parametrize(("path", "status"), [
    ("/fhir/Patient?_offset=" + "9" * 30, 400),
    ("/fhir/Patient?_count=" + "9" * 30, 200),  # capped at MAX_COUNT, as always
    ("/fhir/Patient?_offset=%D9%A1", 400),  # an Arabic-Indic digit is no number here
    ("/fhir/Patient/x/_history/" + "9" * 30, 404),
    ("/fhir/Patient/x/_history/%D9%A1", 404),
    ("/fhir/Patient/a%00b", 404),
    ("/fhir/Patient/a%00b/_history", 404),
    ("/fhir/Patient?name=a%00b", 400),
    ("/fhir/Patient?a%00b=1", 400),
    ("/fhir/Patient?_id=%00", 400),
])
def test_odd_numbers_and_nul_bytes_are_4xx(client: FlaskClient, path: str, status: int) -> None:
    answer = client.get(path)
    if status == 200:
        assert answer.status_code == 200
    else:
        outcome(answer, status)


def test_nul_in_a_body_is_refused_and_not_stored(client: FlaskClient) -> None:
    system = unique_system()
    refused = post(client, patient(system, name=[{"family": "a\x00b"}]))
    assert outcome(refused, 400)["issue"][0]["expression"] == ["name[0].family"]
    lone = client.post("/fhir/Patient", data=b'{"resourceType":"Patient","identifier":[{"'
                       b'system":"' + system.encode() + b'","value":"\\ud800"}]}',
                       headers={"Content-Type": FHIR})
    outcome(lone, 400)
    assert count(client, f"Patient?identifier={system}|") == 0


@pytest.mark.parametrize("extra", [
    {"extension": [{"url": "http://example.org/x", "valueUrl": 5}]},
    {"photo": [{"url": 5}]},
])
def test_a_number_where_a_url_goes_is_422(client: FlaskClient, extra: dict[str, Any]) -> None:
    system = unique_system()
    outcome(post(client, patient(system, **extra)), 422)
    answer = client.post("/fhir/Patient/$validate", json=patient(system, **extra))
    assert answer.status_code == 200
    assert any(i["severity"] == "error" for i in loads(answer.data)["issue"])
    assert count(client, f"Patient?identifier={system}|") == 0


@pytest.mark.parametrize("headers", [{}, {"Prefer": "handling=strict"}])
def test_unknown_parameters_are_400_by_default(client: FlaskClient, headers: dict) -> None:
    answer = client.get("/fhir/AdverseEvent?no-such-param=x", headers=headers)
    assert "no-such-param" in diagnostics(answer, 400)
    assert "lenient" in diagnostics(client.get("/fhir/Patient?_text=x", headers=headers), 400)


def test_lenient_handling_says_what_it_ignored(client: FlaskClient) -> None:
    system = unique_system()
    post(client, patient(system))
    answer = client.get(f"/fhir/Patient?identifier={system}|&bogus=1&_contained=true",
                        headers={"Prefer": "handling=lenient"})
    assert answer.status_code == 200
    bundle = loads(answer.data)
    assert bundle["total"] == 1
    modes = [e["search"]["mode"] for e in bundle["entry"]]
    assert modes == ["match", "outcome"]
    said = bundle["entry"][1]["resource"]
    assert said["resourceType"] == "OperationOutcome"
    assert {i["expression"][0] for i in said["issue"]} == {"bogus", "_contained"}
    assert all("bogus" not in link["url"] for link in bundle["link"])


def test_capability_statement_offers_what_is_served(client: FlaskClient) -> None:
    statement = loads(client.get("/fhir/metadata").data)
    for resource in statement["rest"][0]["resource"]:
        for include in resource.get("searchInclude", []):
            answer = client.get(f"/fhir/{resource['type']}?_include={include}&_count=1")
            assert answer.status_code == 200, (include, answer.data)
        for code in (i["code"] for i in resource.get("interaction", [])):
            if code == "patch":  # offered, so served: an unknown id is a 404, never a 405
                answer = client.patch(f"/fhir/{resource['type']}/no-such-id", json=[],
                                      headers={"Content-Type": "application/json-patch+json"})
                assert answer.status_code == 404, (resource["type"], answer.data)


def _study_with_subjects(client: FlaskClient, subjects: int) -> tuple[str, str]:
    system = unique_system()
    study = post(client, {"resourceType": "ResearchStudy", "status": "active",
                          "identifier": [{"system": system, "value": "S1"}]})
    assert study.status_code == 201, study.data
    study_id = loads(study.data)["id"]
    entries = [{"request": {"method": "POST", "url": "ResearchSubject"}, "resource": {
        "resourceType": "ResearchSubject", "status": "candidate",
        "identifier": [{"system": system, "value": f"sub-{n}"}],
        "study": {"reference": f"ResearchStudy/{study_id}"},
        "individual": {"display": f"subject {n}"}}} for n in range(subjects)]
    done = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                      "entry": entries})
    assert done.status_code == 200, done.data
    return system, study_id


def test_revinclude_beyond_max_count_says_so(client: FlaskClient) -> None:
    """MAX_COUNT is 50 in these tests: 60 subjects give 50 and a warning that names the
    search which pages all of them; never a silent cut."""
    system, study_id = _study_with_subjects(client, 60)
    answer = client.get(f"/fhir/ResearchStudy?identifier={system}|S1"
                        "&_revinclude=ResearchSubject:study")
    bundle = loads(answer.data)
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert len(included) == 50
    notes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(notes) == 1
    text = notes[0]["issue"][0]["diagnostics"]
    assert "MAX_COUNT" in text and f"study=ResearchStudy%2F{study_id}" in text
    paged = client.get(f"/fhir/ResearchSubject?study=ResearchStudy/{study_id}&_summary=count")
    assert loads(paged.data)["total"] == 60


def test_chained_searches_find_the_right_resources(client: FlaskClient) -> None:
    system, study_id = _study_with_subjects(client, 3)
    other, _ = _study_with_subjects(client, 2)
    for chain in ("study:ResearchStudy.identifier", "study.identifier"):
        assert count(client, f"ResearchSubject?{chain}={system}|S1") == 3
        assert count(client, f"ResearchSubject?{chain}={other}|S1") == 2
        assert count(client, f"ResearchSubject?{chain}={system}|nope") == 0
    assert count(client, f"ResearchSubject?study._id={study_id}") == 3
    both = count(client, f"ResearchSubject?study.identifier={system}|S1,{other}|S1")
    assert both == 5
    for bad in ("study:Group.identifier=x", "study.bogus=x", "study.sponsor.bogus=x",
                "status.identifier=x", "_has:AdverseEvent:subject:seriousness=x",
                "study" + ".partof" * 4 + ".identifier=x", "_has:ResearchStudy:x:y=z"):
        outcome(client.get(f"/fhir/ResearchSubject?{bad}"), 400)


def test_evidence_variables_a_study_references_are_readable(client: FlaskClient) -> None:
    variable = post(client, {"resourceType": "EvidenceVariable", "status": "active",
                             "characteristic": [{"definitionCodeableConcept": {
                                 "text": "drug X"}}]})
    assert variable.status_code == 201, variable.data
    rid = loads(variable.data)["id"]
    assert client.get(f"/fhir/EvidenceVariable/{rid}").status_code == 200
    assert client.get(f"/fhir/EvidenceVariable?_id={rid}").status_code == 200


def test_the_fast_path_and_flask_agree_on_refusals(app: Flask) -> None:
    c = app.test_client()
    for query in ("AdverseEvent?no-such-param=x", "Patient?_offset=" + "9" * 25,
                  "ResearchSubject?study:Group.identifier=x"):
        fast, slow = c.get(f"/fhir/{query}"), c.get(f"/fhir/{query}",
                                                     headers={"Prefer": "return=minimal"})
        assert fast.status_code == slow.status_code == 400
        assert loads(fast.data)["issue"] == loads(slow.data)["issue"]


def _await(client: FlaskClient, status_url: str) -> Any:
    for _ in range(600):
        answer = client.get(status_url)
        if answer.status_code != 202:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"{status_url} still running after 60 s")


def test_ingest_runs_as_an_asynchronous_job(client: FlaskClient) -> None:
    """Prefer: respond-async -> 202 and a status URL, as $export; the status URL gives the
    Parameters once loaded, or the refusal's 4xx OperationOutcome (nothing stored)."""
    system = unique_system()
    lines = b"\n".join(dumps({"resourceType": "Patient", "id": f"async-{n}-{system[-8:]}",
                              "identifier": [{"system": system, "value": str(n)}]})
                       for n in range(30))
    ndjson = {"Content-Type": "application/fhir+ndjson", "Prefer": "respond-async"}
    kicked = client.post("/fhir/$ingest?kind=bundle", data=lines, headers=ndjson)
    assert kicked.status_code == 202, kicked.data
    status_url = kicked.headers["Content-Location"].removeprefix("http://testserver")
    done = _await(client, status_url)
    assert done.status_code == 200, done.data
    created = {p["name"]: p.get("valueInteger") for p in loads(done.data)["parameter"]}
    assert created["created"] == 30
    assert count(client, f"Patient?identifier={system}|") == 30
    assert client.delete(status_url).status_code == 202
    outcome(client.get(status_url), 404)

    broken = lines + b"\n{not json"
    kicked = client.post("/fhir/$ingest?kind=bundle", data=broken.replace(
        system.encode(), (system + "b").encode()), headers=ndjson)
    refused = _await(client, kicked.headers["Content-Location"].removeprefix(
        "http://testserver"))
    assert "row 31" in diagnostics(refused, 422)
    assert count(client, f"Patient?identifier={system}b|") == 0
    outcome(client.post("/fhir/$ingest?kind=nope", data=lines, headers=ndjson), 400)


def test_export_of_a_type_not_stored_is_400(client: FlaskClient) -> None:
    answer = client.get("/fhir/$export?_type=Bogus", headers={"Prefer": "respond-async"})
    assert "Bogus" in diagnostics(answer, 400)


@pytest.mark.parametrize("body", [b"null", b"[1, 2]", b'"Patient"', b"5", b"{}\n[]\n",
                                  b'{"resourceType": "ResearchStudy", "id": []}',
                                  b'{"resourceType": "Patient", "id": {"a": 1}}'])
def test_ingest_of_json_that_is_no_resource_is_4xx(client: FlaskClient, body: bytes) -> None:
    """Found by the fuzz test: `null` (seed 77) and a list as id (seed 18, in the full
    suite) in a bundle upload were 500s."""
    answer = client.post("/fhir/$ingest?kind=bundle", data=body,
                         headers={"Content-Type": FHIR})
    # 400 where no resource can be read, 422 (invalid resource) where one can; nothing stored
    assert answer.status_code in (400, 422), answer.data
    assert outcome(answer, answer.status_code)["issue"][0]["diagnostics"]
