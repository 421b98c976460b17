"""Bulk Data $export (asynchronous request pattern) through the gateway, on SQLite and
PostgreSQL: kick-off, status, manifest, files, deletion, and the errors a client gets."""

# ruff: noqa: F811 (tests take the fixtures imported from gateway_fixtures as arguments)

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gateway_fixtures import FHIR, app, client, database_url, patient, post, unique_system  # noqa: F401

from fhir_adapter.gateway import load_settings
from fhir_adapter.store.canonical import loads
from fhir_adapter.store.jobs import Jobs
from fhir_adapter.validation import validate

ASYNC = {"Accept": FHIR, "Prefer": "respond-async"}
BASE = "http://testserver/fhir"


def _finished(client: FlaskClient, location: str, timeout: float = 60) -> Any:
    path = location.removeprefix(BASE.removesuffix("/fhir"))
    deadline = time.monotonic() + timeout
    while True:
        reply = client.get(path, headers={"Accept": "application/json"})
        if reply.status_code != 202:
            return reply
        assert reply.headers["X-Progress"] and reply.headers["Retry-After"] == "1"
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.05)


def _download(client: FlaskClient, url: str, **headers: str) -> bytes:
    reply = client.get(url.removeprefix("http://testserver"), headers=headers)
    try:
        assert reply.status_code == 200 and reply.mimetype == "application/fhir+ndjson"
        return reply.get_data()
    finally:
        reply.close()  # send_file's file


def _study(client: FlaskClient, system: str) -> tuple[str, list[str]]:
    """A study with two subjects (and their patients) and one subject of another study."""
    study = post(client, {"resourceType": "ResearchStudy", "status": "active",
                          "identifier": [{"system": system, "value": "S"}]}).get_json()["id"]
    other = post(client, {"resourceType": "ResearchStudy", "status": "active",
                          "identifier": [{"system": system, "value": "O"}]}).get_json()["id"]
    subjects = []
    for n, target in enumerate((study, study, other)):
        pid = post(client, patient(system, f"p{n}")).get_json()["id"]
        subjects.append(post(client, {
            "resourceType": "ResearchSubject", "status": "on-study",
            "identifier": [{"system": system, "value": f"rs{n}"}],
            "study": {"reference": f"ResearchStudy/{target}"},
            "individual": {"reference": f"Patient/{pid}"}}).get_json()["id"])
    return study, subjects


def test_a_study_export_from_kick_off_to_deletion(client: FlaskClient) -> None:
    system = unique_system()
    study, subjects = _study(client, system)
    kick = client.get(f"/fhir/ResearchStudy/{study}/$export", headers=ASYNC)
    assert kick.status_code == 202, kick.get_data(as_text=True)
    location = kick.headers["Content-Location"]
    assert location.startswith(f"{BASE}/$export-status/")
    done = _finished(client, location)
    assert done.status_code == 200 and done.mimetype == "application/json"
    manifest = done.get_json()
    assert manifest["request"].endswith(f"/fhir/ResearchStudy/{study}/$export")
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    assert manifest["transactionTime"].endswith("Z")
    files = {o["type"]: o for o in manifest["output"]}
    assert sorted(files) == ["Patient", "ResearchStudy", "ResearchSubject"]
    got = {}
    for rtype, entry in files.items():
        lines = _download(client, entry["url"],
                          Accept="application/fhir+ndjson").splitlines()
        assert len(lines) == entry["count"]
        for line in lines:
            resource = loads(line)
            assert validate(resource, "R4") == []
            read = client.get(f"/fhir/{rtype}/{resource['id']}", headers={"Accept": FHIR})
            assert read.get_data() == line  # the bytes a read serves
            got.setdefault(rtype, set()).add(resource["id"])
    assert got["ResearchStudy"] == {study}
    assert got["ResearchSubject"] == set(subjects[:2])  # not the other study's subject
    assert len(got["Patient"]) == 2
    assert client.delete(location.removeprefix("http://testserver")).status_code == 202
    assert _finished(client, location).status_code == 404
    assert client.get(files["Patient"]["url"].removeprefix("http://testserver")
                      ).status_code == 404


def test_a_system_export_in_r5_by_type(client: FlaskClient) -> None:
    system = unique_system()
    r5 = {"Accept": FHIR, "Content-Type": FHIR}
    study = client.post("/fhir/R5/ResearchStudy", headers=r5, json={
        "resourceType": "ResearchStudy", "status": "active"}).get_json()["id"]
    for n in range(3):
        pid = client.post("/fhir/R5/Patient", headers=r5,
                          json=patient(system, f"p{n}")).get_json()["id"]
        assert client.post("/fhir/R5/ResearchSubject", headers=r5, json={
            "resourceType": "ResearchSubject", "status": "active",
            "identifier": [{"system": system, "value": f"rs{n}"}],
            "study": {"reference": f"ResearchStudy/{study}"},
            "subject": {"reference": f"Patient/{pid}"}}).status_code == 201
    kick = client.post("/fhir/R5/$export", headers={**ASYNC, "Content-Type": FHIR}, json={
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueString": "ResearchSubject"},
                      {"name": "_outputFormat", "valueString": "application/ndjson"}]})
    assert kick.status_code == 202, kick.get_data(as_text=True)
    location = kick.headers["Content-Location"]
    assert location.startswith(f"{BASE}/R5/$export-status/")
    manifest = _finished(client, location).get_json()
    assert [o["type"] for o in manifest["output"]] == ["ResearchSubject"]
    url = manifest["output"][0]["url"]
    assert url.startswith(f"{BASE}/R5/$export-file/")
    lines = _download(client, url).splitlines()
    mine = [r for r in map(loads, lines)
            if r.get("identifier", [{}])[0].get("system") == system]
    assert len(mine) == 3 and all("subject" in r for r in mine)  # R5 names it subject
    assert all(validate(r, "R5") == [] for r in mine)


def test_what_a_kick_off_refuses(client: FlaskClient) -> None:
    cases = [("/fhir/$export", {"Accept": FHIR}, "Prefer: respond-async"),
             ("/fhir/$export?_elements=id", ASYNC, "_elements"),
             ("/fhir/$export?_since=yesterday", ASYNC, "yesterday"),
             ("/fhir/$export?_outputFormat=text/csv", ASYNC, "text/csv"),
             ("/fhir/$export?_type=Patient,../x", ASYNC, "../x")]
    for path, headers, said in cases:
        reply = client.get(path, headers=headers)
        assert reply.status_code == 400, path
        body = reply.get_json()
        assert body["resourceType"] == "OperationOutcome" and said in json.dumps(body), path
    missing = client.get("/fhir/ResearchStudy/no-such-study/$export", headers=ASYNC)
    assert missing.status_code == 404
    assert client.get(f"/fhir/$export-status/{'0' * 32}").status_code == 404
    assert client.get("/fhir/$export-status/..%2F..").status_code == 404


def test_files_are_served_only_from_finished_jobs(client: FlaskClient, app: Flask) -> None:
    kick = client.get("/fhir/$export?_type=ResearchStudy", headers=ASYNC)
    location = kick.headers["Content-Location"]
    job = location.rsplit("/", 1)[1]
    _finished(client, location)
    for name in ("done.json", "request.json", "ResearchStudy.ndjson.partial", "x.ndjson"):
        assert client.get(f"/fhir/$export-file/{job}/{name}").status_code == 404, name


def _jobs(app: Flask) -> Jobs:
    return Jobs(app.extensions["fhir_store"].engine)


def test_a_job_whose_worker_died_is_taken_over_then_failed(client: FlaskClient,
                                                          app: Flask) -> None:
    kick = client.get("/fhir/$export?_type=ResearchStudy", headers=ASYNC)
    location = kick.headers["Content-Location"]
    job = location.rsplit("/", 1)[1]
    assert _finished(client, location).status_code == 200
    jobs = _jobs(app)
    # What a worker killed mid-job leaves: running, its heartbeat stopped long ago.
    with jobs.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE export_jobs SET status = 'running', owner = 'gone:1:x', heartbeat = 0, "
            "finished = NULL, result = NULL, attempts = 1 WHERE id = ?"
            if conn.dialect.name == "sqlite" else
            "UPDATE export_jobs SET status = 'running', owner = 'gone:1:x', heartbeat = 0, "
            "finished = NULL, result = NULL, attempts = 1 WHERE id = %s", (job,))
    done = _finished(client, location)  # polling wakes this process's worker: it resumes
    assert done.status_code == 200
    assert _jobs(app).get(job).attempts == 2  # type: ignore[union-attr]
    with jobs.engine.begin() as conn:  # dead again, and out of attempts: failed, visibly
        conn.exec_driver_sql(
            "UPDATE export_jobs SET status = 'running', owner = 'gone:1:x', heartbeat = 0, "
            "finished = NULL, result = NULL, attempts = 3 WHERE id = ?"
            if conn.dialect.name == "sqlite" else
            "UPDATE export_jobs SET status = 'running', owner = 'gone:1:x', heartbeat = 0, "
            "finished = NULL, result = NULL, attempts = 3 WHERE id = %s", (job,))
    reply = _finished(client, location)
    assert reply.status_code == 500
    assert "its worker stopped each time" in reply.get_data(as_text=True)


def test_since_exports_what_changed_from_then(client: FlaskClient) -> None:
    system = unique_system()
    post(client, patient(system, "old"))
    time.sleep(0.01)
    recent = post(client, patient(system, "new")).get_json()
    since = recent["meta"]["lastUpdated"]
    kick = client.get(f"/fhir/$export?_type=Patient&_since={since}", headers=ASYNC)
    manifest = _finished(client, kick.headers["Content-Location"]).get_json()
    lines = _download(client, manifest["output"][0]["url"]).splitlines()
    exported = [loads(line) for line in lines]
    assert recent["id"] in {r["id"] for r in exported}
    assert all(r["meta"]["lastUpdated"] >= since for r in exported)
    assert not [r for r in exported if r["identifier"][0] == {"system": system, "value": "old"}]


def test_finished_jobs_expire(client: FlaskClient, app: Flask) -> None:
    def finished_job() -> tuple[str, str, Any]:
        kick = client.get("/fhir/$export?_type=ResearchStudy", headers=ASYNC)
        location = kick.headers["Content-Location"]
        return location, location.rsplit("/", 1)[1], _finished(client, location)

    def age(job: str, seconds: float) -> None:
        with _jobs(app).engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE export_jobs SET finished = finished - ? WHERE id = ?"
                if conn.dialect.name == "sqlite" else
                "UPDATE export_jobs SET finished = finished - %s WHERE id = %s",
                (seconds, job))

    location, job, done = finished_job()
    finished = _jobs(app).get(job).finished  # type: ignore[union-attr]
    expires = parsedate_to_datetime(done.headers["Expires"]).timestamp()
    assert abs(expires - (finished + 24 * 3600)) < 1  # type: ignore[operator]
    url = done.get_json()["output"][0]["url"]
    age(job, 24 * 3600 - 60)  # a minute left: still there
    assert client.get(location.removeprefix("http://testserver")).status_code == 200
    _download(client, url)
    age(job, 120)  # a minute past: gone, for the file and the status alike
    gone = client.get(url.removeprefix("http://testserver"))
    assert gone.status_code == 404 and "expired" in gone.get_data(as_text=True)
    assert _jobs(app).get(job) is None
    assert client.get(location.removeprefix("http://testserver")).status_code == 404

    _, stale, _ = finished_job()  # not asked for again: the next kick-off removes it
    age(stale, 25 * 3600)
    _, fresh, _ = finished_job()
    assert _jobs(app).get(stale) is None and _jobs(app).get(fresh) is not None


def test_export_retention_setting() -> None:
    assert load_settings()["EXPORT_RETENTION"] == 86400
    assert load_settings({"EXPORT_RETENTION": "60"})["EXPORT_RETENTION"] == 60
    with pytest.raises(ValueError, match="EXPORT_RETENTION"):
        load_settings({"EXPORT_RETENTION": "0"})
