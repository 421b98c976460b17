"""Bulk Data export, the asynchronous request pattern of FHIR Bulk Data Access (v2): kick-off
at `/$export` (every resource) or `/ResearchStudy/<id>/$export` (one study: export.py) with
`_type`, `_since` and `_outputFormat` (ndjson) and `Prefer: respond-async`, answered 202
with the job's status URL in Content-Location; the status URL answers 202 while the job
runs, then 200 with the manifest (or an OperationOutcome if it failed); the files are at
`/$export-file/<job>/<Type>.ndjson`; DELETE on the status URL removes the job (the client's
part once it has the files). A finished job is kept EXPORT_RETENTION seconds (24 hours
unless set; the manifest's Expires header says until when), then removed: by the next
kick-off, or by the request that finds it expired (404, as after a DELETE).

Each job is a folder under EXPORT_DIR (request.json at kick-off; the NDJSON files and
done.json at the end, or error.json), so any gunicorn worker answers for any job; the
export itself runs in a thread of the worker that took the kick-off, which request.json
names, so a job whose worker is gone is reported as failed rather than running forever."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request, send_file

from ..auth.access import UNRESTRICTED, current, permitted, require_all
from ..errors import BadRequest, FhirError, Issue, NotFound
from ..export import TYPE_NAME, export_ndjson
from ..store.base import Store
from ..store.reading import since_instant
from ..store.values import instant_text
from ..validation import FhirVersion
from .context import STORED_TYPES, ctx, public_base, settings
from .hooks import uuid4_hex
from .negotiation import read_json
from .operations import parameters
from .responses import fhir_response, outcome_bytes

bp = Blueprint("bulkexport", __name__)

DEFAULT_DIR = "fhir-adapter-exports"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
SUPPORTED = frozenset({"_outputFormat", "_type", "_since"})
_JOB = re.compile(r"[0-9a-f]{32}")
NDJSON = "application/fhir+ndjson"


def jobs_dir() -> Path:
    """Where jobs live: the EXPORT_DIR setting, else ./fhir-adapter-exports."""
    return Path(settings().get("EXPORT_DIR") or DEFAULT_DIR).resolve()


@dataclass(frozen=True)
class _State:
    """How a job stands, read once per request: its request.json, "done", "error",
    "orphaned" (its process ended before it finished: it reports failure) or "running", and
    when it finished (a timestamp; None while running)."""

    asked: dict[str, Any]
    status: str
    ended: float | None


def _state(folder: Path) -> _State | None:
    """The job in `folder`; None when it has no request.json (not a job, or gone)."""
    try:
        asked = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    for name, status in (("done.json", "done"), ("error.json", "error")):
        try:
            return _State(asked, status, (folder / name).stat().st_mtime)
        except FileNotFoundError:
            continue
    if _orphaned(asked):
        return _State(asked, "orphaned", (folder / "request.json").stat().st_mtime)
    return _State(asked, "running", None)


def _retention() -> int:
    return int(settings()["EXPORT_RETENTION"])


def _expired(state: _State) -> bool:
    return state.ended is not None and \
        state.ended + _retention() <= datetime.now(UTC).timestamp()


def _sweep() -> None:
    """Remove the jobs that expired (each kick-off: the folder does not grow for ever)."""
    try:
        folders = [f for f in jobs_dir().iterdir() if _JOB.fullmatch(f.name)]
    except FileNotFoundError:
        return
    for folder in folders:
        try:
            state = _state(folder)
        except (OSError, ValueError, KeyError, TypeError):  # gone, or not ours to judge
            continue
        if state is not None and _expired(state):
            shutil.rmtree(folder, ignore_errors=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Whole or not at all: a status request never reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data), encoding="utf-8")
    os.replace(partial, path)


def _arguments() -> dict[str, str]:
    if request.method == "GET":
        args = {k: ",".join(request.args.getlist(k)) for k in request.args}
    else:
        args = {k: ",".join(str(v) for v in values)
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


def _kick_off(study: str | None) -> Response:
    c = ctx()
    if "respond-async" not in request.headers.get("Prefer", ""):
        raise BadRequest("$export runs asynchronously: send 'Prefer: respond-async'")
    args = _arguments()
    if args.get("_outputFormat", NDJSON) not in OUTPUT_FORMATS:
        raise BadRequest(f"_outputFormat {args['_outputFormat']!r} is not supported: "
                         f"{NDJSON} only")
    types = [t.strip() for t in args.get("_type", "").split(",") if t.strip()] or None
    if bad := [t for t in types or () if not TYPE_NAME.fullmatch(t)]:
        raise BadRequest(f"_type {bad[0]!r} is not a resource type")
    if bad := [t for t in types or () if t not in STORED_TYPES]:  # else: an empty export
        raise BadRequest(f"_type {bad[0]!r} is not a type stored here; stored types: "
                         + ", ".join(STORED_TYPES))
    types = exported_types(types)
    since = args.get("_since") or None
    if since:
        since_instant(since)  # 400 now, not in the job
    if study is not None:
        c.store.read("ResearchStudy", study)  # 404 / 410 now, not in the job
    _sweep()
    job = uuid4_hex()
    folder = jobs_dir() / job
    folder.mkdir(parents=True)
    _write_json(folder / "request.json", {
        "request": public_base() + request.full_path.removeprefix("/fhir").rstrip("?"),
        "transactionTime": instant_text(datetime.now(UTC)),
        "version": c.version, "types": types, "study": study, "since": since,
        "host": socket.gethostname(), "pid": os.getpid(), "client": current().client_id})
    threading.Thread(target=_run, args=(c.store, folder, c.version, types, study, since),
                     name=f"export-{job}", daemon=True).start()
    return fhir_response(None, 202, headers={
        "Content-Location": f"{c.base}/$export-status/{job}"})


def _run(store: Store, folder: Path, version: FhirVersion, types: list[str] | None,
         study: str | None, since: str | None) -> None:
    try:
        summary = export_ndjson(store, folder, version, types=types, study=study,
                                since=since)
        _write_json(folder / "done.json",
                    {"files": {p.stem: n for p, n in summary.counts.items()}})
    except Exception as exc:  # the status request reports it
        message = exc.message if isinstance(exc, FhirError) else f"{type(exc).__name__}: {exc}"
        try:
            _write_json(folder / "error.json", {"message": message})
        except OSError:  # the job was deleted meanwhile
            return
    if (folder / "cancelled").exists():
        shutil.rmtree(folder, ignore_errors=True)


@bp.route("/$export", methods=["GET", "POST"])
def export_system() -> Response:
    return _kick_off(None)


@bp.route("/ResearchStudy/<id>/$export", methods=["GET", "POST"])
def export_study(id: str) -> Response:
    return _kick_off(id)


def _job(job: str) -> tuple[Path, _State]:
    folder = jobs_dir() / job
    state = None
    if _JOB.fullmatch(job) and not (folder / "cancelled").exists():
        state = _state(folder)
    if state is None or (current() is not UNRESTRICTED
                         and state.asked.get("client") != current().client_id):
        raise NotFound(f"no export job {job}")  # another client's job is not there for you
    if _expired(state):
        shutil.rmtree(folder, ignore_errors=True)
        raise NotFound(f"export job {job} has expired (jobs are kept {_retention()} s after "
                       f"they finish)")
    return folder, state


def _orphaned(asked: dict[str, Any]) -> bool:
    """Whether the process that ran the job of request.json `asked` (on this host) ended."""
    return asked["host"] == socket.gethostname() and not _alive(int(asked["pid"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@bp.route("/$export-status/<job>", methods=["GET", "DELETE"])
def export_status(job: str) -> Response:
    c = ctx()
    folder, state = _job(job)
    if request.method == "DELETE":
        if state.status in ("done", "error"):
            shutil.rmtree(folder, ignore_errors=True)
        else:  # the job's thread removes it when it ends
            (folder / "cancelled").touch()
        return fhir_response(None, 202)
    asked = state.asked
    if state.status == "done":
        done = json.loads((folder / "done.json").read_text(encoding="utf-8"))
        manifest = {
            "transactionTime": asked["transactionTime"], "request": asked["request"],
            "requiresAccessToken": bool(asked.get("client")),
            "output": [{"type": rtype, "url": f"{c.base}/$export-file/{job}/{rtype}.ndjson",
                        "count": count} for rtype, count in done["files"].items()],
            "error": []}
        expires = datetime.fromtimestamp((state.ended or 0) + _retention(), UTC)
        return Response(json.dumps(manifest), 200, content_type="application/json",
                        headers={"Expires": format_datetime(expires, usegmt=True)})
    if state.status == "error":
        message = json.loads((folder / "error.json").read_text(encoding="utf-8"))["message"]
    elif state.status == "orphaned":
        message = "the export stopped: the server process that ran it has ended"
    else:
        return fhir_response(None, 202, headers={"X-Progress": "in progress",
                                                 "Retry-After": "1"})
    issue = Issue("error", "exception", f"export failed: {message}")
    return fhir_response(outcome_bytes([issue]), 500, c.mime, c.version)


@bp.get("/$export-file/<job>/<name>")
def export_file(job: str, name: str) -> Response:
    folder, state = _job(job)
    path = folder / name
    if state.status != "done" or not name.endswith(".ndjson") \
            or not TYPE_NAME.fullmatch(name.removesuffix(".ndjson")) or not path.is_file():
        raise NotFound(f"no file {name} in export job {job}")
    return send_file(path, mimetype=NDJSON, conditional=False)
