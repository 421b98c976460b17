"""Loading source files into the store: map each file in BOTH FHIR versions, pair the R4 and
R5 representations by (type, id) (the mappings derive the same deterministic ids in both),
and store every pair in one transaction per file: all of a file or nothing.

Re-loading updates resources in place (same ids); content that did not change keeps its
version, so loading the same file twice changes nothing the second time. Writes go through
Store.bulk_upsert (batches of a few hundred resources, store/bulk.py) as store Reps: each
representation's bytes and index rows, made where it was mapped; the CLI maps R4 and R5 in
two child processes while it writes (parallel.py). An adverse-event file is parsed once: the
R4 process reads it and passes its records to the R5 process (parallel.Relay; a record
pickles and unpickles in about half the time parsing its row takes).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from importlib import import_module
from pathlib import Path
from typing import Any

from ..errors import InputError, InvalidResource
from ..store.base import Store
from ..validation import FhirVersion, checked
from .producers import KINDS, Producer, producer
from .report import Reporter, Tally, Warnings

Resource = dict[str, Any]


@dataclass
class LoadSummary:
    """What a load did, per resource type: created / updated / unchanged counts."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    files: int = 0
    findings: Counter[str] = field(default_factory=Counter)  # data-quality rule -> rows
    cohorts: Counter[str] = field(default_factory=Counter)  # derived Groups: not the files'
    # ResearchStudies rewritten to reference their analysis-population Groups (populations.py)
    populations: Counter[str] = field(default_factory=Counter)

    def add(self, resource_type: str, outcome: str) -> None:
        self.counts.setdefault(resource_type, Counter())[outcome] += 1

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())

    def lines(self) -> list[str]:
        """One line per resource type, for the command line."""
        lines = [f"{rtype}: {c['created']} created, {c['updated']} updated, "
                 f"{c['unchanged']} unchanged" for rtype, c in sorted(self.counts.items())]
        if self.findings:
            lines.append("data-quality findings (mapped as recorded, tagged): " + ", ".join(
                f"{rule} {n}" for rule, n in sorted(self.findings.items())))
        if self.cohorts:
            c = self.cohorts
            lines.append(f"cohort Group (the studies' enrolled subjects): {c['created']} "
                         f"created, {c['updated']} updated, {c['unchanged']} unchanged")
        if self.populations["updated"]:
            lines.append(f"ResearchStudy linked to its analysis populations: "
                         f"{self.populations['updated']} updated")
        return lines

    def __str__(self) -> str:
        return (f"{self.total('created')} created, {self.total('updated')} updated, "
                f"{self.total('unchanged')} unchanged")


def _units(kind: str, paths: list[Path]) -> list[list[Path]]:
    """What one transaction stores: a file, except SDTM trial-design datasets (TS, TA, TI,
    TE), which make one study per folder together."""
    if kind != "study":
        return [[p] for p in paths]
    from ..sources.study import is_sdtm_design

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
    from ..store.bulk import representation

    for resource in make(paths, version, **options):
        yield representation(resource, version)


def store_file(store: Store, pairs: Iterable[tuple[int, dict[FhirVersion, Resource]]],
               source: str, summary: LoadSummary, report: Reporter | None = None,
               validate: bool = False, files: int = 1) -> None:
    """Write every (row, pair) in one transaction, in batches (Store.bulk_upsert): an error
    anywhere rolls the whole file back; progress goes to `report`. `validate`: check each
    representation (mapped resources are checked already). Memory stays flat: outcomes are
    counted, not kept."""
    stored = 0
    row = [0]  # the row being prepared: a representation fails validation as it is pulled

    def numbered() -> Iterator[dict[FhirVersion, Resource]]:
        for number, pair in pairs:
            row[0] = number
            yield pair

    counts: Counter[tuple[str, str]] = Counter()
    try:
        with store.transaction(bulk=True) as tx:
            try:
                items = checked(numbered()) if validate else numbered()
                for rtype, outcome in tx.bulk_upsert(items):
                    counts[rtype, outcome] += 1
                    stored += 1
                    if report is not None:
                        report.progress(source, stored)
            except InvalidResource as exc:
                raise InputError(source, f"{exc.message}: "
                                 + "; ".join(str(i) for i in exc.issues[:5]),
                                 row=row[0]) from exc
    finally:
        if report is not None:
            report.progress(source, stored, done=True)
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
               store: Store | None = None, report: Reporter | None = None,
               warn: Callable[[str], None] | None = None, parallel: bool = False,
               **options: Any) -> LoadSummary:
    """Map and store each file (study | enrollments | adverse-events), one transaction per
    file (per folder for SDTM trial-design datasets); `options` go to the mapping (study=...,
    disposition=..., timezone=..., strict=...). Warnings, findings and progress go to
    `report` (or warnings and findings to `warn(text)`); the summary counts findings by rule.
    `parallel`: map R4 and R5 in two forked processes while this one writes (parallel.py;
    single-threaded callers such as the CLI only)."""
    from .. import parallel as workers

    make = producer(kind)
    if kind == "enrollments":  # one "today" for both versions of every file
        options.setdefault("today", date.today())
    parallel = parallel and workers.available()
    if parallel:
        import_module(f".{KINDS[kind][1]}", __package__)
        import_module("..store.bulk", __package__)
    own = store is None
    target: Store | None = store
    summary = LoadSummary()
    started = _now()
    if report is None and warn is not None:
        report = Warnings(warn)
    counted = Tally(report, summary.findings)
    with _gc_for_loading():
        try:
            if kind == "study" and "populations" not in options:
                # The analysis-population Groups already stored: each ResearchStudy is
                # written with its links (populations.py), so a re-load changes nothing.
                target = target or _open(database)
                options["populations"] = _stored_populations(target)
            for unit in _units(kind, list(paths)):
                # R5 warnings and findings repeat the R4 ones (same source facts): report
                # them once. The mapping processes start first: they map while the store opens.
                relay = None
                if parallel and kind == "adverse-events":
                    # The R4 process reads the file and passes its records on: parsed once.
                    relay = workers.Relay()
                    r4 = workers.in_child(_represented, make, unit, "R4", report=counted,
                                          on_error=relay.end, relay=relay,
                                          relay_role="send", **options)
                    r5 = workers.in_child(_represented, make, unit, "R5", report=None,
                                          relay=relay, relay_role="receive", **options)
                elif parallel:
                    r4 = workers.in_child(_represented, make, unit, "R4", report=counted,
                                          **options)
                    r5 = workers.in_child(_represented, make, unit, "R5", report=None,
                                          **options)
                else:
                    r4 = _represented(make, unit, "R4", report=counted, **options)
                    r5 = _represented(make, unit, "R5", report=None, **options)
                label = ", ".join(str(p) for p in unit)
                try:
                    if target is None:
                        target = _open(database)
                    store_file(target, enumerate(paired(r4, r5), start=1), label, summary,
                               report, files=len(unit))
                finally:  # stop the mapping (and its child processes) now, not when collected
                    for stream in (r4, r5):
                        getattr(stream, "close", lambda: None)()
                    if relay is not None:
                        relay.close()
            if target is None:
                target = _open(database)
            target.analyze(written(summary))
            if kind in ("study", "enrollments") and written(summary):
                _cohorts(target, started, summary)
        finally:
            if own and target is not None:
                target.close()  # type: ignore[attr-defined]
    return summary


def _now() -> str:
    from datetime import UTC, datetime

    from ..store.values import instant_text

    return instant_text(datetime.now(UTC))


def _cohorts(store: Store, started: str, summary: LoadSummary) -> None:
    """The hooks that keep each study's cohort Group (cohorts.py) and its links to its
    analysis-population Groups (populations.py) in step."""
    from .cohorts import refresh_cohorts
    from .populations import refresh_populations

    summary.cohorts.update(refresh_cohorts(store, started))
    summary.populations.update(refresh_populations(store, started))


def _stored_populations(store: Store) -> dict[str, list[str]]:
    from .populations import stored_links

    return stored_links(store)


def _open(database: str | None) -> Store:
    from ..store import open_store  # imports SQLAlchemy: after the mapping processes start

    return open_store(database)


def written(summary: LoadSummary) -> int:
    """Resources a load wrote (created or updated): what ANALYZE is worth running for."""
    return summary.total("created") + summary.total("updated")
