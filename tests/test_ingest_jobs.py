"""Asynchronous $ingest jobs live in the database (store/jobs.py), on SQLite and PostgreSQL:
kicked off on one gateway (here an app with EXPORT_WORKERS=0, so it runs nothing), answered
by any app sharing the store, taken over when their worker died mid-job, and failed visibly
once out of attempts. Each test has a database of its own: no other app's job worker may
claim the jobs it stages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from store_backends import new_postgres_database

from fhir_adapter.gateway import create_app
from fhir_adapter.store.canonical import dumps, loads
from fhir_adapter.store.jobs import Jobs

BASE = "http://testserver/fhir"
NDJSON = {"Content-Type": "application/fhir+ndjson", "Prefer": "respond-async"}


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    with new_postgres_database() as url:
        yield url


def _app(url: str, **settings: Any) -> Flask:
    app = create_app({"DATABASE_URL": url, "PUBLIC_BASE_URL": BASE, **settings})
    app.testing = True
    return app


@pytest.fixture
def apps(fresh_url: str) -> Iterator[tuple[Flask, Flask]]:
    """(a process that runs no jobs, a process whose worker takes over after 1 s)."""
    web = _app(fresh_url, EXPORT_WORKERS=0)
    runner = _app(fresh_url, EXPORT_STALE=1)
    yield web, runner
    for app in (web, runner):
        app.extensions["fhir_store"].close()


def _patients(tag: str, n: int) -> bytes:
    return b"\n".join(dumps({"resourceType": "Patient", "id": f"{tag}-{i}"}) for i in range(n))


def _kick_off(client: FlaskClient, body: bytes) -> tuple[str, str]:
    """(status path, job id) of a new job."""
    kicked = client.post("/fhir/$ingest?kind=bundle", data=body, headers=NDJSON)
    assert kicked.status_code == 202, kicked.data
    path = kicked.headers["Content-Location"].removeprefix("http://testserver")
    return path, path.rsplit("/", 1)[1]


def _answer(client: FlaskClient, path: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while (reply := client.get(path)).status_code == 202:
        assert time.monotonic() < deadline, f"{path} did not finish"
        time.sleep(0.05)
    return reply


def _die_mid_job(jobs: Jobs, job: str, attempts: int) -> None:
    """What a worker killed mid-job leaves: the job running, claimed `attempts` times, its
    heartbeat stopped long ago, its uploads still stored."""
    claimed = jobs.claim("gone:1:x", stale=3600, max_attempts=10)
    assert claimed is not None and claimed.id == job
    with jobs.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE export_jobs SET heartbeat = 0, attempts = ? WHERE id = ?"
            if conn.dialect.name == "sqlite" else
            "UPDATE export_jobs SET heartbeat = 0, attempts = %s WHERE id = %s",
            (attempts, job))


def _upload_parts(jobs: Jobs, job: str) -> int:
    with jobs.engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM export_files WHERE job = ?" if conn.dialect.name == "sqlite"
            else "SELECT count(*) FROM export_files WHERE job = %s", (job,)).scalar_one())


def test_a_job_is_stored_with_its_uploads_and_answered_by_any_process(
        apps: tuple[Flask, Flask]) -> None:
    web, runner = apps
    jobs = Jobs(web.extensions["fhir_store"].engine)
    path, job = _kick_off(web.test_client(), _patients("any", 12))
    queued = web.test_client().get(path)  # nobody runs it yet: web has no worker
    assert queued.status_code == 202 and queued.headers["X-Progress"] == "queued"
    stored = jobs.get(job)
    assert stored is not None and stored.request["operation"] == "ingest"
    assert _upload_parts(jobs, job) == 1
    done = _answer(runner.test_client(), path)  # polling starts the runner's worker
    assert done.status_code == 200, done.data
    counts = {p["name"]: p.get("valueInteger") for p in loads(done.data)["parameter"]}
    assert counts["created"] == 12
    assert _upload_parts(jobs, job) == 0  # the uploads go once the job has ended
    again = web.test_client().get(path)  # the other process answers from the database
    assert again.status_code == 200 and loads(again.data) == loads(done.data)
    assert web.test_client().get("/fhir/Patient/any-11").status_code == 200
    # Not an export job: the export status URL does not know it, nor this one exports.
    assert web.test_client().get(f"/fhir/$export-status/{job}").status_code == 404
    assert web.test_client().delete(path).status_code == 202
    assert web.test_client().get(path).status_code == 404 and jobs.get(job) is None


def test_a_job_whose_worker_died_is_taken_over_then_failed(apps: tuple[Flask, Flask]) -> None:
    web, runner = apps
    jobs = Jobs(web.extensions["fhir_store"].engine)
    path, job = _kick_off(web.test_client(), _patients("rescued", 5))
    _die_mid_job(jobs, job, attempts=1)
    running = web.test_client().get(path)
    assert running.status_code == 202 and running.headers["X-Progress"] == \
        "running (attempt 1)"
    conflict = web.test_client().delete(path)  # a load cannot be stopped half-way
    assert conflict.status_code == 409 and jobs.get(job) is not None
    done = _answer(runner.test_client(), path)  # stale after 1 s: the runner takes it over
    assert done.status_code == 200, done.data
    assert jobs.get(job).attempts == 2  # type: ignore[union-attr]
    assert runner.test_client().get("/fhir/Patient/rescued-4").status_code == 200

    path, job = _kick_off(web.test_client(), _patients("doomed", 5))
    _die_mid_job(jobs, job, attempts=3)  # dead again, and out of attempts: failed, visibly
    failed = _answer(runner.test_client(), path)
    assert failed.status_code == 500
    text = failed.get_data(as_text=True)
    assert "its worker stopped each time" in text and "OperationOutcome" in text
    assert _upload_parts(jobs, job) == 0
    assert web.test_client().get("/fhir/Patient/doomed-0").status_code == 404


def test_a_refused_upload_is_the_jobs_4xx_and_stores_nothing(apps: tuple[Flask, Flask]
                                                             ) -> None:
    web, runner = apps
    path, _ = _kick_off(web.test_client(), _patients("refused", 3) + b"\n{not json")
    refused = _answer(runner.test_client(), path)
    assert refused.status_code == 422, refused.data
    issues = loads(refused.data)["issue"]
    assert any("row 4" in (i.get("diagnostics") or "") for i in issues), issues
    assert web.test_client().get("/fhir/Patient/refused-0").status_code == 404


def _deep_patient(rid: str, depth: int) -> bytes:
    nested: dict[str, Any] = {"url": "urn:leaf", "valueString": "x"}
    for _ in range(depth):
        nested = {"url": "urn:level", "extension": [nested]}
    return dumps({"resourceType": "Patient", "id": rid, "extension": [nested]})


def test_the_apps_max_depth_holds_in_its_jobs_and_the_environments_in_the_pipeline(
        fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_DEPTH is one setting (fhir_adapter/limits.py): an app's value applies to the
    $ingest jobs its worker runs (outside any request), FHIR_ADAPTER_MAX_DEPTH to `load
    bundle` (pipeline/bundles.py)."""
    from fhir_adapter.errors import InputError
    from fhir_adapter.pipeline.bundles import load_bundles

    body = _deep_patient("deep-0", 10)  # ~21 levels of objects and arrays
    strict = _app(fresh_url, MAX_DEPTH=8)
    try:
        path, _ = _kick_off(strict.test_client(), body)
        refused = _answer(strict.test_client(), path)
        assert refused.status_code == 422, refused.data
        assert "FHIR_ADAPTER_MAX_DEPTH" in refused.get_data(as_text=True)
    finally:
        strict.extensions["fhir_store"].close()
    lenient = _app(fresh_url)  # the default, 100: the same upload loads
    try:
        path, _ = _kick_off(lenient.test_client(), body)
        assert _answer(lenient.test_client(), path).status_code == 200
    finally:
        lenient.extensions["fhir_store"].close()

    upload = tmp_path / "deep.ndjson"
    upload.write_bytes(_deep_patient("deep-1", 10))
    monkeypatch.setenv("FHIR_ADAPTER_MAX_DEPTH", "8")
    with pytest.raises(InputError, match="FHIR_ADAPTER_MAX_DEPTH") as refused_load:
        load_bundles([upload], "R4", database=fresh_url)
    assert "deeper than 8 levels" in str(refused_load.value)
    monkeypatch.setenv("FHIR_ADAPTER_MAX_DEPTH", "50")
    assert load_bundles([upload], "R4", database=fresh_url).total("created") == 1
