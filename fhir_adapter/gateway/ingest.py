"""`POST [base]/$ingest`: source files in, mapped and stored exactly as `fhir-adapter load`
does it (pipeline.load.load_files: both FHIR versions, one transaction per file, all or
nothing).

    POST /fhir/$ingest?kind=study                    CT.gov v2 JSON / legacy XML
    POST /fhir/$ingest?kind=enrollments&study=NCT05003921    our CSV/JSON, SDTM DM
    POST /fhir/$ingest?kind=adverse-events&study=...         our CSV/JSON, SDTM AE
    POST /fhir/$ingest?kind=bundle                   a FHIR Bundle / NDJSON, stored as is

The body is the file (its Content-Type or `?filename=NAME.ext` tells the format), or
multipart/form-data with one or more `file` parts (SDTM trial-design datasets together) and
optional `disposition` / `supplemental` parts (SDTM DS, SUPPDM/SUPPAE). Text options as query
parameters: study, timezone, intervention, encoding (of CSV; or the Content-Type's charset),
strict (true: rows with data-quality findings are refused, as `--strict`). The answer is a
Parameters resource: created / updated / unchanged counts (in total and per type), the
mapping warnings, `findings` (rows per data-quality rule) and an `outcome` OperationOutcome
with one warning issue per finding (the row was stored as recorded and tagged).
`Prefer: respond-async` runs it as a job in the database (ingestjobs.py; `run_job` here)."""

from __future__ import annotations

import codecs
import tempfile
from pathlib import Path
from typing import Any

from flask import Request

from ..errors import BadRequest, InputError, InvalidResource, Issue
from ..findings import SYSTEM
from ..pipeline.bundles import load_bundles
from ..pipeline.load import LoadSummary, load_files
from ..pipeline.report import Collector
from ..records import Finding
from ..sources.tabular import ENCODING
from ..store.base import Store
from ..store.jobs import Job, Jobs
from .context import Ctx
from .limits import limit, limits_of

# The options each kind takes (as `fhir-adapter load <kind>` does).
OPTIONS = {"study": (), "bundle": (),
           "enrollments": ("study", "timezone", "disposition", "supplemental", "strict"),
           "adverse-events": ("study", "timezone", "intervention", "supplemental", "strict")}
KINDS = tuple(OPTIONS)
ENCODING_OPTION = "_encoding"  # CSV text encoding: ?encoding= or the Content-Type's charset
FILE_OPTIONS = ("disposition", "supplemental")
_SUFFIX = {"application/json": ".json", "application/fhir+json": ".json",
           "application/xml": ".xml", "text/xml": ".xml", "text/csv": ".csv",
           "application/csv": ".csv", "application/x-ndjson": ".ndjson",
           "application/fhir+ndjson": ".ndjson", "application/x-sas-xport": ".xpt"}


def _save(folder: Path, name: str, data: bytes, seen: set[str]) -> Path:
    name = Path(name).name or "upload"
    if name in seen:
        raise BadRequest(f"two uploaded files are both named {name}")
    seen.add(name)
    if not data.strip():
        raise BadRequest(f"$ingest got an empty file ({name})")
    path = folder / name
    path.write_bytes(data)
    return path


def _uploads(request: Request, folder: Path) -> tuple[list[Path], dict[str, Path]]:
    """The source files and the file options, written under `folder`."""
    seen: set[str] = set()
    if request.mimetype == "multipart/form-data":
        files = [_save(folder, f.filename or "upload", f.read(), seen)
                 for f in request.files.getlist("file")]
        if not files:
            raise BadRequest("multipart $ingest needs at least one part named 'file'")
        extra = {name: _save(folder, f.filename or name, f.read(), seen)
                 for name in FILE_OPTIONS if (f := request.files.get(name)) is not None}
        return files, extra
    name = request.args.get("filename")
    suffix = _SUFFIX.get(request.mimetype)
    if not name and not suffix:
        raise BadRequest(f"cannot tell the format of a {request.mimetype or 'untyped'} body: "
                         "send a Content-Type (application/json, application/xml, text/csv) "
                         "or ?filename=NAME.ext")
    return [_save(folder, name or f"upload{suffix}", request.get_data(), seen)], {}


def _outcome(findings: list[Finding], folder: Path) -> dict[str, Any]:
    """The findings as an OperationOutcome: a warning each, its rule in details, file, row and
    field in diagnostics (an informational issue when there were none)."""
    issues = [{"severity": "warning", "code": "business-rule",
               "details": {"coding": [{"system": SYSTEM, "code": f.rule}], "text": f.message},
               "diagnostics": str(f).replace(f"{folder}/", "")} for f in findings]
    if not issues:
        issues = [{"severity": "information", "code": "informational",
                   "diagnostics": "no data-quality findings"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _parameters(summary: LoadSummary, warnings: list[str]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": outcome, "valueInteger": summary.total(outcome)}
        for outcome in ("created", "updated", "unchanged")]
    for rtype, counts in sorted(summary.counts.items()):
        params.append({"name": "resourceType", "part": [
            {"name": "type", "valueCode": rtype},
            *({"name": o, "valueInteger": counts[o]}
              for o in ("created", "updated", "unchanged"))]})
    params += [{"name": "warning", "valueString": text} for text in warnings]
    return {"resourceType": "Parameters", "parameter": params}


def prepare(request: Request, folder: Path) -> tuple[str, list[Path], dict[str, Any]]:
    """Check a $ingest request and write its uploads under `folder`: (kind, source paths,
    options). 400 for what can be told before any loading."""
    kind = request.args.get("kind") or request.form.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"$ingest needs kind= one of {', '.join(KINDS)}")
    paths, files = _uploads(request, folder)
    options: dict[str, Any] = {**files}
    for name, value in [*request.args.items(), *request.form.items()]:
        if name not in ("kind", "filename", "_format", "encoding") and value:
            options[name] = value
    unknown = sorted(set(options) - set(OPTIONS[kind]))
    if unknown:
        raise BadRequest(f"$ingest kind={kind} does not take {', '.join(unknown)}; it "
                         f"takes {', '.join(OPTIONS[kind]) or 'no options'}")
    if "strict" in options:
        if options["strict"] not in ("true", "false"):
            raise BadRequest(f"$ingest strict= is true or false, not {options['strict']!r}")
        options["strict"] = options["strict"] == "true"
    encoding = request.args.get("encoding") or request.mimetype_params.get("charset")
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise BadRequest(f"unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1, "
                             "utf-16)") from None
        options[ENCODING_OPTION] = encoding
    if kind == "study" and len(paths) > 1 and all(p.suffix.lower() in (".xpt", ".csv")
                                                 for p in paths):
        paths = [folder]  # SDTM trial design: TS/TA/TI/TE read together, as a folder
    return kind, paths, options


def run(c: Ctx, kind: str, paths: list[Path], options: dict[str, Any], folder: Path
        ) -> dict[str, Any]:
    """Map and store prepared uploads (all or nothing per file); the Parameters resource
    that reports it. Input problems -> InvalidResource naming the uploaded files."""
    collector = Collector()
    options = dict(options)
    token = ENCODING.set(options.pop(ENCODING_OPTION, None) or ENCODING.get())
    try:
        if kind == "bundle":
            summary = load_bundles(paths, c.version, store=c.store,
                                   max_depth=limit("MAX_DEPTH"))
        else:
            summary = load_files(kind, paths, store=c.store, report=collector, **options)
    except InputError as exc:
        # Report the uploaded file names, not our temporary copies; over HTTP the encoding
        # is named by ?encoding= or the Content-Type's charset, not --encoding.
        message = str(exc).replace(f"{folder}/", "").replace(
            "with --encoding (", "with ?encoding= or a charset on the Content-Type (").replace(
            "--encoding ", "?encoding=")
        rows = [text.replace(f"{folder}/", "") for text in exc.row_texts()]
        raise InvalidResource(message, [Issue("error", "invalid", text)
                                        for text in (message, *rows)]) from exc
    finally:
        ENCODING.reset(token)
    answer = _parameters(summary, [w.replace(f"{folder}/", "") for w in collector.warnings])
    if kind != "bundle":
        if summary.findings:  # rows per rule, as the command line's summary counts them
            answer["parameter"].append({"name": "findings", "part": [
                {"name": rule, "valueInteger": n}
                for rule, n in sorted(summary.findings.items())]})
        answer["parameter"].append({"name": "outcome",
                                    "resource": _outcome(collector.findings, folder)})
    return answer


def ingest(c: Ctx, request: Request) -> dict[str, Any]:
    """Run one $ingest request; the Parameters resource that reports it."""
    with tempfile.TemporaryDirectory(prefix="fhir-adapter-ingest-") as tmp:
        folder = Path(tmp)
        kind, paths, options = prepare(request, folder)
        return run(c, kind, paths, options, folder)


def job_request(kind: str, paths: list[Path], options: dict[str, Any], folder: Path
                ) -> tuple[dict[str, Any], dict[str, Path]]:
    """What an asynchronous $ingest job stores of a prepared request: (the request's JSON,
    its uploads as job files "upload-<n>"). Paths are kept relative to `folder`, so that
    any worker can lay the uploads out again in a folder of its own (`run_job`)."""
    uploads = sorted(p for p in folder.iterdir() if p.is_file())
    return {"operation": "ingest", "kind": kind,
            "uploads": [p.name for p in uploads],
            "paths": [str(p.relative_to(folder)) for p in paths],
            "options": {k: str(v.relative_to(folder)) if isinstance(v, Path) else v
                        for k, v in options.items()}}, \
        {f"upload-{n}": p for n, p in enumerate(uploads)}


def run_job(store: Store, jobs: Jobs, job: Job, folder: Path, conf: dict[str, Any]
            ) -> dict[str, Any]:
    """Run a claimed $ingest job in the empty scratch `folder` with the limits of the app
    settings `conf`: its uploads written there from the database, then `run` as the
    synchronous request runs; the Parameters."""
    asked = job.request
    for n, name in enumerate(asked["uploads"]):
        with (folder / name).open("wb") as out:
            for part in jobs.file_parts(job.id, f"upload-{n}"):
                out.write(part)
    options = {k: folder / v if k in FILE_OPTIONS else v
               for k, v in asked["options"].items()}
    c = Ctx(store, asked["version"], "", "application/fhir+json", 0, 0)
    with limits_of(conf):
        return run(c, asked["kind"], [folder / p for p in asked["paths"]], options, folder)
