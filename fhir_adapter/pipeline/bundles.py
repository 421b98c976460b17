"""FHIR Bundles and NDJSON stored as they are (`load bundle`, `$ingest?kind=bundle`): each
resource validated, one transaction per file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..limits import setting
from ..store.base import Store
from ..validation import FhirVersion
from .load import LoadSummary, Resource, store_file, written
from .report import Reporter


def read_fhir_file(path: Path, max_depth: int | None = None
                   ) -> Iterator[tuple[int, Resource]]:
    """(entry or line number, resource) from a Bundle, a single resource, or NDJSON.
    Decimals keep their text (store.canonical.loads). Bundle entries whose fullUrl is a
    urn:uuid and whose resource has no id get that uuid as id, and references to the
    urn:uuid are rewritten to Type/id, so a transaction Bundle loads with its links.
    `max_depth`: the nesting refused (default: the MAX_DEPTH setting, limits.py)."""
    from ..store import canonical

    depth = setting("MAX_DEPTH") if max_depth is None else max_depth

    data = path.read_bytes()
    if not data.strip():
        raise InputError(str(path), "empty file: expected a FHIR Bundle, a resource or NDJSON")
    try:
        parsed = [canonical.loads(data)]
    except ValueError:
        parsed = None
    if parsed is None or path.suffix in (".ndjson", ".jsonl"):
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    resource = canonical.loads(line)
                except ValueError as exc:
                    raise InputError(str(path), f"not JSON: {exc}", row=number) from exc
                yield number, _shallow(path, number, resource, depth)
        return
    document = parsed[0]
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        yield 1, _shallow(path, 1, document, depth)
        return
    entries = document.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(str(path), "Bundle.entry must be a list of objects")
    links: dict[str, str] = {}
    for entry in entries:
        resource, full = entry.get("resource"), str(entry.get("fullUrl", ""))
        if isinstance(resource, dict) and full.startswith("urn:uuid:"):
            resource.setdefault("id", full.removeprefix("urn:uuid:"))
            links[full] = f"{resource.get('resourceType')}/{resource['id']}"
    for number, entry in enumerate(entries, start=1):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            raise InputError(str(path), "Bundle entry without a resource", row=number)
        yield number, _shallow(path, number, _relink(resource, links) if links else resource,
                                depth)


def _shallow(path: Path, number: int, resource: Any, limit: int) -> Any:
    """`resource`, unless it is no JSON object or nests deeper than `limit` (the MAX_DEPTH
    setting; validating it would exhaust the stack): then an InputError."""
    from ..store import canonical

    if not isinstance(resource, dict):
        raise InputError(str(path), "not a FHIR resource: expected a JSON object, found "
                         f"{type(resource).__name__}", row=number)
    if canonical.too_deep(resource, limit):
        raise InputError(str(path), f"nested deeper than {limit} levels (setting "
                         "FHIR_ADAPTER_MAX_DEPTH)", row=number)
    return resource


def _relink(value: Any, links: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _relink(v, links) for k, v in value.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in links:
            out["reference"] = links[out["reference"]]
        return out
    if isinstance(value, list):
        return [_relink(v, links) for v in value]
    return value


def load_bundles(paths: Iterable[Path], version: FhirVersion, *, database: str | None = None,
                 store: Store | None = None, report: Reporter | None = None,
                 max_depth: int | None = None) -> LoadSummary:
    """Store the resources of each Bundle / NDJSON file as they are, in `version`,
    validated, one transaction per file (read_fhir_file: `max_depth`)."""
    from ..store import open_store

    own = store is None
    target = store if store is not None else open_store(database)
    summary = LoadSummary()
    try:
        for path in paths:
            pairs = ((n, {version: resource}) for n, resource in read_fhir_file(path, max_depth))
            store_file(target, pairs, str(path), summary, report, validate=True)
        target.analyze(written(summary))
    finally:
        if own:
            target.close()  # type: ignore[attr-defined]
    return summary
