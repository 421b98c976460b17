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
parameters: study, timezone, intervention, strict (true: rows with data-quality findings are
refused, as `--strict`). The answer is a Parameters resource: created / updated / unchanged
counts (in total and per type), the mapping warnings, `findings` (rows per data-quality rule)
and an `outcome` OperationOutcome with one warning issue per finding (the row was stored as
recorded and tagged).
"""

from __future__ import annotations

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
from .context import Ctx

# The options each kind takes (as `fhir-adapter load <kind>` does).
OPTIONS = {"study": (), "bundle": (),
           "enrollments": ("study", "timezone", "disposition", "supplemental", "strict"),
           "adverse-events": ("study", "timezone", "intervention", "supplemental", "strict")}
KINDS = tuple(OPTIONS)
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


def ingest(c: Ctx, request: Request) -> dict[str, Any]:
    """Run one $ingest request; the Parameters resource that reports it."""
    kind = request.args.get("kind") or request.form.get("kind")
    if kind not in KINDS:
        raise BadRequest(f"$ingest needs kind= one of {', '.join(KINDS)}")
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="fhir-adapter-ingest-") as tmp:
        folder = Path(tmp)
        paths, files = _uploads(request, folder)
        options: dict[str, Any] = {**files}
        for name, value in [*request.args.items(), *request.form.items()]:
            if name not in ("kind", "filename", "_format") and value:
                options[name] = value
        unknown = sorted(set(options) - set(OPTIONS[kind]))
        if unknown:
            raise BadRequest(f"$ingest kind={kind} does not take {', '.join(unknown)}; it "
                             f"takes {', '.join(OPTIONS[kind]) or 'no options'}")
        if "strict" in options:
            if options["strict"] not in ("true", "false"):
                raise BadRequest(f"$ingest strict= is true or false, not {options['strict']!r}")
            options["strict"] = options["strict"] == "true"
        if kind == "study" and len(paths) > 1 and all(p.suffix.lower() in (".xpt", ".csv")
                                                     for p in paths):
            paths = [folder]  # SDTM trial design: TS/TA/TI/TE read together, as a folder
        try:
            if kind == "bundle":
                summary = load_bundles(paths, c.version, store=c.store)
            else:
                summary = load_files(kind, paths, store=c.store, report=collector, **options)
        except InputError as exc:
            # Report the uploaded file names, not our temporary copies.
            message = str(exc).replace(f"{folder}/", "")
            rows = [text.replace(f"{folder}/", "") for text in exc.row_texts()]
            raise InvalidResource(message, [Issue("error", "invalid", text)
                                            for text in (message, *rows)]) from exc
        answer = _parameters(summary, [w.replace(f"{folder}/", "") for w in collector.warnings])
        if kind != "bundle":
            if summary.findings:  # rows per rule, as the command line's summary counts them
                answer["parameter"].append({"name": "findings", "part": [
                    {"name": rule, "valueInteger": n}
                    for rule, n in sorted(summary.findings.items())]})
            answer["parameter"].append({"name": "outcome",
                                        "resource": _outcome(collector.findings, folder)})
    return answer
