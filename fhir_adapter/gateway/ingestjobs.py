"""`$ingest` as an asynchronous job (the FHIR asynchronous request pattern, as `$export`):
with `Prefer: respond-async` the uploads are checked and saved, the answer is 202 with the
job's status URL in Content-Location, and the mapping and storing run in a thread, so a
large upload does not hold a worker while it is loaded. The status URL answers 202 while
the job runs, then the Parameters resource (200) or the OperationOutcome of the refusal
(its 4xx, nothing stored); DELETE removes a finished job. A job is a folder under
EXPORT_DIR/ingest (any worker answers for any job) kept EXPORT_RETENTION seconds after it
ends; a job whose worker process ended before it finished is reported as failed."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Request, Response, request

from ..auth.access import UNRESTRICTED, current
from ..errors import Conflict, FhirError, Issue, NotFound
from ..store.canonical import dumps
from .context import Ctx, ctx, settings
from .hooks import uuid4_hex
from .ingest import prepare, run
from .responses import fhir_response, outcome_bytes

bp = Blueprint("ingestjobs", __name__)
_JOB = re.compile(r"[0-9a-f]{32}")
_UPLOADS = "uploads"


def jobs_dir() -> Path:
    """EXPORT_DIR/ingest: a folder every worker reaches."""
    return Path(settings().get("EXPORT_DIR") or "fhir-adapter-exports").resolve() / "ingest"


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a status request never reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _sweep(retention: int) -> None:
    """Remove jobs that ended more than `retention` seconds ago."""
    now = time.time()
    for folder in jobs_dir().glob("*"):
        for name in ("result.json", "error.json"):
            try:
                if (folder / name).stat().st_mtime + retention <= now:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:
                continue


def kick_off(c: Ctx, upload: Request) -> Response:
    """Check and save the uploads (400 now for what can be told now), start the job, 202."""
    _sweep(int(settings()["EXPORT_RETENTION"]))
    job = uuid4_hex()
    folder = jobs_dir() / job
    uploads = folder / _UPLOADS
    uploads.mkdir(parents=True)
    try:
        kind, paths, options = prepare(upload, uploads)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _write(folder / "request.json", dumps({"kind": kind, "host": socket.gethostname(),
                                           "pid": os.getpid(),
                                           "client": current().client_id}))
    threading.Thread(target=_run, args=(c, folder, kind, paths, options),
                     name=f"ingest-{job}", daemon=True).start()
    return fhir_response(None, 202, headers={
        "Content-Location": f"{c.base}/$ingest-status/{job}"})


def _run(c: Ctx, folder: Path, kind: str, paths: list[Path], options: dict[str, Any]
         ) -> None:
    try:
        result = run(c, kind, paths, options, folder / _UPLOADS)
        _write(folder / "result.json", dumps(result))
    except Exception as exc:  # the status request reports it
        if isinstance(exc, FhirError):
            error = {"status": exc.status, "issues": [i.to_fhir() for i in exc.issues]}
        else:
            error = {"status": 500, "issues": [Issue(
                "error", "exception", f"$ingest failed: {type(exc).__name__}").to_fhir()]}
        try:
            _write(folder / "error.json", json.dumps(error).encode())
        except OSError:  # the job was deleted meanwhile
            return
    finally:
        shutil.rmtree(folder / _UPLOADS, ignore_errors=True)


def _orphaned(folder: Path) -> bool:
    asked = json.loads((folder / "request.json").read_bytes())
    if asked["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(asked["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@bp.route("/$ingest-status/<job>", methods=["GET", "DELETE"])
def ingest_status(job: str) -> Response:
    c = ctx()
    folder = jobs_dir() / job
    if not _JOB.fullmatch(job) or not (folder / "request.json").is_file():
        raise NotFound(f"no $ingest job {job}")
    # With auth on, a job is its client's alone (its answer names rows and values), as $export's.
    if current() is not UNRESTRICTED and json.loads(
            (folder / "request.json").read_bytes()).get("client") != current().client_id:
        raise NotFound(f"no $ingest job {job}")
    result, error = folder / "result.json", folder / "error.json"
    if request.method == "DELETE":
        if result.exists() or error.exists() or _orphaned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            return fhir_response(None, 202)
        raise Conflict("the $ingest job is still running: a load is all or nothing and "
                       "cannot be stopped half-way; DELETE it once it has finished")
    if result.exists():
        return fhir_response(result.read_bytes(), 200, c.mime, c.version)
    if error.exists():
        found = json.loads(error.read_bytes())
        body = dumps({"resourceType": "OperationOutcome", "issue": found["issues"]})
        return fhir_response(body, int(found["status"]), c.mime, c.version)
    if _orphaned(folder):
        issue = Issue("error", "exception", "$ingest stopped: the server process that ran "
                      "it has ended (nothing of a file is stored unless all of it is)")
        return fhir_response(outcome_bytes([issue]), 500, c.mime, c.version)
    return fhir_response(None, 202, headers={"X-Progress": "in progress",
                                             "Retry-After": "1"})

