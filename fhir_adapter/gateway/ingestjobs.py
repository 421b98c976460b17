"""`$ingest` as an asynchronous job (the FHIR asynchronous request pattern, as `$export`):
with `Prefer: respond-async` the uploads are checked, then stored in the database with a
queued job (store/jobs.py), and the answer is 202 with the job's status URL in
Content-Location. The job worker of any gateway process sharing the store maps and stores it
(exportworker.py, ingest.run_job), so a large upload does not hold a request worker while it
is loaded. The status URL, answered by any process, gives 202 while the job is queued or
runs, then the Parameters resource (200) or the OperationOutcome of the refusal (its 4xx,
nothing of a refused file stored). A job whose worker died is taken over by another worker
(a load is idempotent: resource ids come from the source, so a file stored before the death
is "unchanged" the second time) or, after EXPORT_MAX_ATTEMPTS, failed with a 500 that says
so. DELETE removes a finished job; a finished job is kept EXPORT_RETENTION seconds. With
auth on, a job is its client's alone (its answer names rows and values), as `$export`'s."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from flask import Blueprint, Request, Response, current_app, request

from ..auth.access import UNRESTRICTED, current
from ..errors import Conflict, Issue, NotFound
from ..store.canonical import dumps
from ..store.jobs import Job, Jobs, operation
from .context import Ctx, ctx, settings
from .exportworker import ensure_worker
from .hooks import uuid4_hex
from .ingest import job_request, prepare
from .responses import fhir_response, outcome_bytes

bp = Blueprint("ingestjobs", __name__)
_JOB = re.compile(r"[0-9a-f]{32}")


def _jobs() -> Jobs:
    return Jobs(current_app.extensions["fhir_store"].engine)


def _retention() -> int:
    return int(settings()["EXPORT_RETENTION"])


def kick_off(c: Ctx, upload: Request) -> Response:
    """Check the uploads (400 now for what can be told now), store them with a queued job,
    wake this process's job worker; 202."""
    jobs = _jobs()
    jobs.sweep(_retention())
    with tempfile.TemporaryDirectory(prefix="fhir-adapter-ingest-") as tmp:
        kind, paths, options = prepare(upload, Path(tmp))
        asked, files = job_request(kind, paths, options, Path(tmp))
        job = uuid4_hex()
        jobs.create(job, {**asked, "version": c.version, "client": current().client_id},
                    files)
    worker = ensure_worker(c.store, settings())
    if worker is not None:
        worker.wake.set()
    return fhir_response(None, 202, headers={
        "Content-Location": f"{c.base}/$ingest-status/{job}"})


def _job(job_id: str) -> Job:
    """The ingest job `job_id` of the current client (404 for another client's, an export
    job, or one past its retention, which is removed)."""
    jobs = _jobs()
    job = jobs.get(job_id) if _JOB.fullmatch(job_id) else None
    if job is None or operation(job.request) != "ingest" or (
            current() is not UNRESTRICTED and job.request.get("client") != current().client_id):
        raise NotFound(f"no $ingest job {job_id}")
    if job.finished is not None and job.finished + _retention() <= time.time():
        jobs.remove(job_id)
        raise NotFound(f"$ingest job {job_id} has expired (jobs are kept {_retention()} s "
                       "after they finish)")
    return job


@bp.route("/$ingest-status/<job_id>", methods=["GET", "DELETE"])
def ingest_status(job_id: str) -> Response:
    c = ctx()
    job = _job(job_id)
    ensure_worker(c.store, settings())  # a process that only polls runs jobs too
    if request.method == "DELETE":
        if _jobs().remove_finished(job_id):
            return fhir_response(None, 202)
        raise Conflict("the $ingest job is still running: a load is all or nothing and "
                       "cannot be stopped half-way; DELETE it once it has finished")
    if job.status == "done":
        return fhir_response(dumps(job.result or {}), 200, c.mime, c.version)
    if job.status == "error":
        found = job.result or {}
        if "issues" in found:  # the refusal a synchronous $ingest would have answered
            body = dumps({"resourceType": "OperationOutcome", "issue": found["issues"]})
            return fhir_response(body, int(found["status"]), c.mime, c.version)
        issue = Issue("error", "exception", "$ingest failed: "
                      f"{found.get('message', 'unknown error')} (nothing of a file is stored "
                      "unless all of it is)")
        return fhir_response(outcome_bytes([issue]), 500, c.mime, c.version)
    progress = "queued" if job.status == "queued" else f"running (attempt {job.attempts})"
    return fhir_response(None, 202, headers={"X-Progress": progress, "Retry-After": "1"})
