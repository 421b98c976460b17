"""Bulk Data export, the asynchronous request pattern of FHIR Bulk Data Access (v2): kick-off
at `/$export` (every resource), `/ResearchStudy/<id>/$export` (one study: export.py),
`/Group/<id>/$export` (the Patient compartment of the Group's members) or `/Patient/$export`
(of every Patient): pipeline/compartment.py, with `_type`, `_since`, `_outputFormat`
(ndjson) and, at Patient and Group level, `_typeFilter`; `Prefer: respond-async` is
required. The kick-off answers 202 with the job's status URL in Content-Location; the status
URL answers 202 while the job is queued or runs, then 200 with the manifest (or an
OperationOutcome if it failed); the files are at `/$export-file/<job>/<Type>.ndjson`; DELETE
on the status URL removes the job. A finished job is kept EXPORT_RETENTION seconds (the
manifest's Expires header says until when), then removed by the next kick-off or by the
request that finds it expired (404, as after a DELETE).

Jobs and their files live in the database (store/jobs.py), run by the export worker of any
gateway process sharing it (exportworker.py): a job survives the process that took its
kick-off, and a job whose worker died is taken over or, after EXPORT_MAX_ATTEMPTS, failed."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Blueprint, Response, current_app, request

from ..auth.access import UNRESTRICTED, current, permitted, require_all
from ..errors import BadRequest, Issue, NotFound
from ..export import TYPE_NAME
from ..pipeline.compartment import Filters
from ..store.jobs import Job, Jobs, operation
from ..store.reading import since_instant
from ..store.values import instant_text
from .context import STORED_TYPES, ctx, public_base, settings
from .exportworker import ensure_worker
from .hooks import uuid4_hex
from .negotiation import read_json
from .operations import parameters
from .responses import fhir_response, outcome_bytes

bp = Blueprint("bulkexport", __name__)

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
SUPPORTED = frozenset({"_outputFormat", "_type", "_since", "_typeFilter"})
_JOB = re.compile(r"[0-9a-f]{32}")
NDJSON = "application/fhir+ndjson"


def _jobs() -> Jobs:
    # The app's store, not ctx()'s: a file download's Accept is NDJSON, which ctx() refuses.
    return Jobs(current_app.extensions["fhir_store"].engine)


def _retention() -> int:
    return int(settings()["EXPORT_RETENTION"])


def _expired(job: Job) -> bool:
    return job.finished is not None and job.finished + _retention() <= time.time()


def _arguments() -> dict[str, list[str]]:
    if request.method == "GET":
        args = {k: request.args.getlist(k) for k in request.args}
    else:
        args = {k: [str(v) for v in values]
                for k, values in parameters(read_json(request)).items()}
    if unknown := sorted(set(args) - SUPPORTED):
        raise BadRequest(f"$export parameter {unknown[0]} is not supported (supported: "
                         f"{', '.join(sorted(SUPPORTED))})")
    return args


def exported_types(types: list[str] | None) -> list[str] | None:
    """The types an export may write for the current token: those asked for, each needing
    read (else 403); without _type, every type the token may read (all with auth off)."""
    if current() is UNRESTRICTED:
        return types
    if types:
        require_all(types, "r", "$export")
        return types
    allowed = permitted(STORED_TYPES, "r")
    if not allowed:
        require_all(STORED_TYPES[:1], "r", "$export")  # 403 naming what is missing
    return allowed


def _kick_off(kind: str, rid: str | None = None) -> Response:
    c = ctx()
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise BadRequest("$export runs asynchronously: send 'Prefer: respond-async'")
    args = _arguments()
    output = ",".join(args.get("_outputFormat", [NDJSON]))
    if output not in OUTPUT_FORMATS:
        raise BadRequest(f"_outputFormat {output!r} is not supported: {NDJSON} only")
    types = [t.strip() for v in args.get("_type", []) for t in v.split(",") if t.strip()] or None
    if bad := [t for t in types or () if not TYPE_NAME.fullmatch(t)]:
        raise BadRequest(f"_type {bad[0]!r} is not a resource type")
    if bad := [t for t in types or () if t not in STORED_TYPES]:  # else: an empty export
        raise BadRequest(f"_type {bad[0]!r} is not a type stored here; stored types: "
                         + ", ".join(STORED_TYPES))
    types = exported_types(types)
    since = ",".join(args.get("_since", [])) or None
    if since:
        since_instant(since)  # 400 now, not in the job
    type_filters = args.get("_typeFilter", [])
    if type_filters and kind not in ("group", "patient"):
        raise BadRequest("_typeFilter is supported on Patient and Group exports "
                         "(/Patient/$export, /Group/<id>/$export)")
    Filters.parse(types, type_filters)  # 400 now
    if kind == "study":
        c.store.read("ResearchStudy", rid or "")  # 404 / 410 now, not in the job
    elif kind == "group":
        c.store.read("Group", rid or "")
    jobs = _jobs()
    jobs.sweep(_retention())
    job = uuid4_hex()
    jobs.create(job, {
        "request": public_base() + request.full_path.removeprefix("/fhir").rstrip("?"),
        "transactionTime": instant_text(datetime.now(UTC)), "version": c.version,
        "kind": kind, "id": rid, "types": types, "since": since, "typeFilter": type_filters,
        "client": current().client_id})
    worker = ensure_worker(c.store, settings())
    if worker is not None:
        worker.wake.set()
    return fhir_response(None, 202, headers={
        "Content-Location": f"{c.base}/$export-status/{job}"})


@bp.route("/$export", methods=["GET", "POST"])
def export_system() -> Response:
    return _kick_off("system")


@bp.route("/ResearchStudy/<id>/$export", methods=["GET", "POST"])
def export_study(id: str) -> Response:
    return _kick_off("study", id)


@bp.route("/Group/<id>/$export", methods=["GET", "POST"])
def export_group(id: str) -> Response:
    return _kick_off("group", id)


@bp.route("/Patient/$export", methods=["GET", "POST"])
def export_patients() -> Response:
    return _kick_off("patient")


def _job(job_id: str) -> Job:
    job = _jobs().get(job_id) if _JOB.fullmatch(job_id) else None
    if job is None or operation(job.request) != "export" or (
            current() is not UNRESTRICTED and job.request.get("client") != current().client_id):
        raise NotFound(f"no export job {job_id}")  # another client's job is not there for you
    if _expired(job):
        _jobs().remove(job_id)
        raise NotFound(f"export job {job_id} has expired (jobs are kept {_retention()} s after "
                       f"they finish)")
    return job


@bp.route("/$export-status/<job_id>", methods=["GET", "DELETE"])
def export_status(job_id: str) -> Response:
    c = ctx()
    job = _job(job_id)
    ensure_worker(c.store, settings())  # a process that only polls runs jobs too
    if request.method == "DELETE":
        _jobs().remove(job_id)
        return fhir_response(None, 202)
    asked = job.request
    if job.status == "done":
        files: dict[str, Any] = (job.result or {}).get("files", {})
        manifest = {
            "transactionTime": asked["transactionTime"], "request": asked["request"],
            "requiresAccessToken": bool(asked.get("client")),
            "output": [{"type": name.removesuffix(".ndjson"),
                        "url": f"{c.base}/$export-file/{job_id}/{name}", "count": count}
                       for name, count in files.items()],
            "error": []}
        expires = datetime.fromtimestamp((job.finished or 0) + _retention(), UTC)
        return Response(json.dumps(manifest), 200, content_type="application/json",
                        headers={"Expires": format_datetime(expires, usegmt=True)})
    if job.status == "error":
        message = (job.result or {}).get("message", "unknown error")
        issue = Issue("error", "exception", f"export failed: {message}")
        return fhir_response(outcome_bytes([issue]), 500, c.mime, c.version)
    progress = ("queued" if job.status == "queued" else
                f"running (attempt {job.attempts})")
    return fhir_response(None, 202, headers={"X-Progress": progress, "Retry-After": "1"})


@bp.get("/$export-file/<job_id>/<name>")
def export_file(job_id: str, name: str) -> Response:
    job = _job(job_id)
    files = (job.result or {}).get("files", {}) if job.status == "done" else {}
    if name not in files or not name.endswith(".ndjson") \
            or not TYPE_NAME.fullmatch(name.removesuffix(".ndjson")):
        raise NotFound(f"no file {name} in export job {job_id}")
    jobs = _jobs()
    return Response(jobs.file_parts(job_id, name), 200, mimetype=NDJSON)
