"""FHIR Bundles and NDJSON stored as they are (`load bundle`, `$ingest?kind=bundle`): each
resource validated, one transaction per file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store.base import Store
from ..validation import FhirVersion
from .load import LoadSummary, Resource, store_file, written
from .report import Reporter


def read_fhir_file(path: Path) -> Iterator[tuple[int, Resource]]:
    """(entry or line number, resource) from a Bundle, a single resource, or NDJSON.
    Decimals keep their text (store.canonical.loads). Bundle entries whose fullUrl is a
    urn:uuid and whose resource has no id get that uuid as id, and references to the
    urn:uuid are rewritten to Type/id, so a transaction Bundle loads with its links."""
    from ..store import canonical

    data = path.read_bytes()
    try:
        parsed = [canonical.loads(data)]
    except ValueError:
        parsed = None
    if parsed is None or path.suffix in (".ndjson", ".jsonl"):
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    yield number, canonical.loads(line)
                except ValueError as exc:
                    raise InputError(str(path), f"not JSON: {exc}", row=number) from exc
        return
    document = parsed[0]
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        yield 1, document
        return
    entries = document.get("entry") or []
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
        yield number, _relink(resource, links) if links else resource


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
                 store: Store | None = None, report: Reporter | None = None) -> LoadSummary:
    """Store the resources of each Bundle / NDJSON file as they are, in `version`,
    validated, one transaction per file."""
    from ..store import open_store

    own = store is None
    target = store if store is not None else open_store(database)
    summary = LoadSummary()
    try:
        for path in paths:
            pairs = ((n, {version: resource}) for n, resource in read_fhir_file(path))
            store_file(target, pairs, str(path), summary, report, validate=True)
        target.analyze(written(summary))
    finally:
        if own:
            target.close()  # type: ignore[attr-defined]
    return summary
