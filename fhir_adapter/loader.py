"""Loading source files into the store: map each file in BOTH FHIR versions, pair the R4 and
R5 representations by (type, id) (the mappings derive the same deterministic ids in both),
and store every pair in one transaction per file: all of a file or nothing.

Re-loading updates resources in place (same ids); content that did not change keeps its
version, so loading the same file twice changes nothing the second time. Writes go through
Store.bulk_upsert (batches of a few hundred resources, store/bulk.py) as store Reps: each
representation's bytes and index rows, made where it was mapped; the CLI maps R4 and R5 in
two child processes while it writes (parallel.py).
"""

from __future__ import annotations

import gc
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from importlib import import_module
from pathlib import Path
from typing import Any

from .errors import InputError, InvalidResource
from .store.base import Store
from .validation import FhirVersion

Resource = dict[str, Any]
Warn = Callable[[str], None] | None
# (paths, version, warn=..., **options) -> validated resources of that version
Producer = Callable[..., Iterable[Resource]]


@dataclass
class LoadSummary:
    """What a load did, per resource type: created / updated / unchanged counts."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    files: int = 0
    cohorts: Counter[str] = field(default_factory=Counter)  # derived Groups: not the files'

    def add(self, resource_type: str, outcome: str) -> None:
        self.counts.setdefault(resource_type, Counter())[outcome] += 1

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())

    def lines(self) -> list[str]:
        """One line per resource type, for the command line."""
        out = [f"{rtype}: {c['created']} created, {c['updated']} updated, "
               f"{c['unchanged']} unchanged" for rtype, c in sorted(self.counts.items())]
        if self.cohorts:
            c = self.cohorts
            out.append(f"cohort Group (the studies' enrolled subjects): {c['created']} "
                       f"created, {c['updated']} updated, {c['unchanged']} unchanged")
        return out

    def __str__(self) -> str:
        return (f"{self.total('created')} created, {self.total('updated')} updated, "
                f"{self.total('unchanged')} unchanged")


def producer(kind: str) -> Producer:
    """The resource-generating function of a source kind: the one its `map` command uses,
    called as f(paths, version, warn=..., **options)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown source kind {kind!r} (study, enrollments, adverse-events)")
    return _KINDS[kind][0]


def _studies(paths: list[Path], version: FhirVersion, warn: Warn = None,
             **options: Any) -> Iterator[Resource]:
    from .commands.study import study_resources
    from .mapping.cohort import link_study

    for resource in study_resources(paths, version, warn=warn, **options):
        yield link_study(resource, version)  # recruitment.actualGroup: cohorts.py makes it


def _enrollments(paths: list[Path], version: FhirVersion, warn: Warn = None, *,
                 skip_invalid: bool = False, today: date | None = None, **options: Any
                 ) -> Iterator[Resource]:
    from .commands.enrollments import enrollment_resources

    said: set[str] = set()

    def noted(where: str, text: str) -> None:
        if warn and text not in said:  # each kind of warning once, not once per row
            said.add(text)
            warn(f"{where}: {text}")

    def skipped(error: InputError) -> None:
        if warn:
            warn(f"skipped invalid row: {error}")

    for path in paths:
        yield from enrollment_resources(
            path, version, today=today or date.today(), warn=noted,
            on_error=skipped if skip_invalid else None, **options)


def _adverse_events(paths: list[Path], version: FhirVersion, warn: Warn = None,
                    **options: Any) -> Iterator[Resource]:
    from .commands.adverse_event_load import LoadReport, adverse_event_resources

    for path in paths:
        report = LoadReport()
        yield from adverse_event_resources(path, version, report, tally=False, **options)
        if warn:
            for text, times in report.warnings.items():
                warn(f"{path}: {text}" + (f" ({times} rows)" if times > 1 else ""))
            for error in report.skipped:
                warn(f"skipped invalid row: {error}")


# Source kind -> its producer and the module the producer imports (the parallel load
# imports it before forking the mapping processes: once for both, rather than in each).
_KINDS: dict[str, tuple[Producer, str]] = {
    "study": (_studies, "commands.study"),
    "enrollments": (_enrollments, "commands.enrollments"),
    "adverse-events": (_adverse_events, "commands.adverse_event_load"),
}


def _units(kind: str, paths: list[Path]) -> list[list[Path]]:
    """What one transaction stores: a file, except SDTM trial-design datasets (TS, TA, TI,
    TE), which make one study per folder together."""
    if kind != "study":
        return [[p] for p in paths]
    from .sources.study import is_sdtm_design

    units: list[list[Path]] = []
    designs: dict[Path, list[Path]] = {}
    for path in paths:
        if path.is_file() and is_sdtm_design(path):
            folder = path.resolve().parent
            if folder not in designs:
                designs[folder] = []
                units.append(designs[folder])
            designs[folder].append(path)
        else:
            units.append([path])
    return units


def _key(item: Any) -> tuple[str, str]:
    """(type, id) of a resource dict or of a store Rep (bulk.py)."""
    if isinstance(item, dict):
        return item["resourceType"], item["id"]
    return item.rtype, item.rid


def paired(r4: Iterable[Any], r5: Iterable[Any]) -> Iterator[dict[FhirVersion, Any]]:
    """Zip the two versions' streams (resources, or Reps) by (type, id), in step: when both
    mappings emit in the same order nothing is buffered; a resource only one version has
    comes out alone."""
    pending: dict[str, dict[tuple[str, str], Any]] = {"R4": {}, "R5": {}}
    streams = {"R4": iter(r4), "R5": iter(r5)}
    done = set()
    while len(done) < 2:
        for version, stream in streams.items():
            if version in done:
                continue
            item = next(stream, None)
            if item is None:
                done.add(version)
                continue
            key = _key(item)
            other = "R5" if version == "R4" else "R4"
            if key in pending[other]:
                mate = pending[other].pop(key)
                yield {version: item, other: mate}  # type: ignore[misc]
            else:
                pending[version][key] = item
    for version, left in pending.items():
        for item in left.values():
            yield {version: item}  # type: ignore[misc]


def _represented(make: Producer, paths: list[Path], version: FhirVersion, **options: Any
                 ) -> Iterator[Any]:
    """The producer's resources as the store writes them (store.bulk.representation): bytes
    and index rows, made here, in the mapping process, rather than in the writer."""
    from .store.bulk import representation

    for resource in make(paths, version, **options):
        yield representation(resource, version)


class Progress:
    """A resource counter on stderr, shown when stderr is a terminal (or when forced)."""

    def __init__(self, label: str, enabled: bool | None = None, every: int = 200) -> None:
        self.label, self.count, self.every = label, 0, every
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def tick(self) -> None:
        self.count += 1
        if self.enabled and self.count % self.every == 0:
            sys.stderr.write(f"\r{self.label}: {self.count} resources")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.count >= self.every:
            sys.stderr.write(f"\r{self.label}: {self.count} resources\n")


def store_file(store: Store, pairs: Iterable[tuple[int, dict[FhirVersion, Resource]]],
               source: str, summary: LoadSummary, progress: bool | None = None,
               validate: bool = False, files: int = 1) -> None:
    """Write every (row, pair) in one transaction, in batches (Store.bulk_upsert): an error
    anywhere rolls the whole file back. `validate`: check each representation (mapped
    resources are checked already). Memory stays flat: outcomes are counted, not kept."""
    meter = Progress(source, progress)
    row = [0]  # the row being prepared: a representation fails validation as it is pulled

    def numbered() -> Iterator[dict[FhirVersion, Resource]]:
        for number, pair in pairs:
            row[0] = number
            yield pair

    counts: Counter[tuple[str, str]] = Counter()
    try:
        with store.transaction(bulk=True) as tx:
            try:
                for rtype, outcome in tx.bulk_upsert(numbered(), validate=validate):
                    counts[rtype, outcome] += 1
                    meter.tick()
            except InvalidResource as exc:
                raise InputError(source, f"{exc.message}: "
                                 + "; ".join(str(i) for i in exc.issues[:5]),
                                 row=row[0]) from exc
    finally:
        meter.close()
    for (rtype, outcome), times in counts.items():  # counted only once the file committed
        summary.counts.setdefault(rtype, Counter())[outcome] += times
    summary.files += files


@contextmanager
def _gc_for_loading() -> Iterator[None]:
    """Fewer cyclic-GC passes while loading: a load allocates millions of short-lived,
    acyclic tuples and dicts (freed by reference counting), and each pass walks every
    tracked object: unpickling a batch cost 5x more with the default thresholds (measured
    56 -> 11 us per AE). The objects alive now (imports, caches) are frozen out of the
    passes; the forked mapping processes inherit both settings. Restored afterwards."""
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    if not frozen:  # a host that froze objects itself keeps its own freeze
        gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if not frozen:
            gc.unfreeze()


def load_files(kind: str, paths: Iterable[Path], *, database: str | None = None,
               store: Store | None = None, progress: bool | None = None,
               warn: Callable[[str], None] | None = None, parallel: bool = False,
               **options: Any) -> LoadSummary:
    """Map and store each file (study | enrollments | adverse-events), one transaction per
    file (per folder for SDTM trial-design datasets); `options` go to the mapping (study=...,
    disposition=..., timezone=...). `parallel`: map R4 and R5 in two forked processes while
    this one writes (parallel.py; single-threaded callers such as the CLI only)."""
    from . import parallel as workers

    make = producer(kind)
    if kind == "enrollments":  # one "today" for both versions of every file
        options.setdefault("today", date.today())
    parallel = parallel and workers.available()
    if parallel:
        import_module(f".{_KINDS[kind][1]}", __package__)
        import_module(".store.bulk", __package__)
    own = store is None
    target: Store | None = store
    summary = LoadSummary()
    started = _now()
    with _gc_for_loading():
        try:
            for unit in _units(kind, list(paths)):
                # R5 warnings repeat the R4 ones (same source facts): report them once.
                # The mapping processes start first: they map while the store opens.
                if parallel:
                    r4 = workers.in_child(_represented, make, unit, "R4", warn=warn, **options)
                    r5 = workers.in_child(_represented, make, unit, "R5", warn=None, **options)
                else:
                    r4 = _represented(make, unit, "R4", warn=warn, **options)
                    r5 = _represented(make, unit, "R5", warn=None, **options)
                label = ", ".join(str(p) for p in unit)
                try:
                    if target is None:
                        target = _open(database)
                    store_file(target, enumerate(paired(r4, r5), start=1), label, summary,
                               progress, files=len(unit))
                finally:  # stop the mapping (and its child processes) now, not when collected
                    for stream in (r4, r5):
                        getattr(stream, "close", lambda: None)()
            if target is None:
                target = _open(database)
            target.analyze(_written(summary))
            if kind in ("study", "enrollments") and _written(summary):
                _cohorts(target, started, summary)
        finally:
            if own and target is not None:
                target.close()  # type: ignore[attr-defined]
    return summary


def _now() -> str:
    from datetime import UTC, datetime

    from .store.values import instant_text

    return instant_text(datetime.now(UTC))


def _cohorts(store: Store, started: str, summary: LoadSummary) -> None:
    """The hook that keeps each study's cohort Group in step (pipeline/cohorts.py)."""
    from .pipeline.cohorts import refresh_cohorts

    summary.cohorts.update(refresh_cohorts(store, started))


def _open(database: str | None) -> Store:
    from .store import open_store  # imports SQLAlchemy: after the mapping processes start

    return open_store(database)


def _written(summary: LoadSummary) -> int:
    return summary.total("created") + summary.total("updated")


def read_fhir_file(path: Path) -> Iterator[tuple[int, Resource]]:
    """(entry or line number, resource) from a Bundle, a single resource, or NDJSON.
    Decimals keep their text (store.canonical.loads). Bundle entries whose fullUrl is a
    urn:uuid and whose resource has no id get that uuid as id, and references to the
    urn:uuid are rewritten to Type/id, so a transaction Bundle loads with its links."""
    from .store import canonical

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
                 store: Store | None = None, progress: bool | None = None) -> LoadSummary:
    """Store the resources of each Bundle / NDJSON file as they are, in `version`,
    validated, one transaction per file."""
    from .store import open_store

    own = store is None
    target = store if store is not None else open_store(database)
    summary = LoadSummary()
    try:
        for path in paths:
            pairs = ((n, {version: resource}) for n, resource in read_fhir_file(path))
            store_file(target, pairs, str(path), summary, progress, validate=True)
        target.analyze(_written(summary))
    finally:
        if own:
            target.close()  # type: ignore[attr-defined]
    return summary
