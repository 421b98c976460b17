"""Bulk export: every resource of the generated study, from the store to NDJSON files as
`fhir-adapter export --study` writes them (fhir_adapter.export: the study's scope, then
streamed stored bytes), resources/s, against the orjson floor: `orjson.dumps` of the same
resources as dicts, written to one NDJSON file."""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from . import OUT, missing, not_available, rate, result, settings, size_label
from .datasets import store_for
from .generate import STUDY_ID

NAME = "export"
MODULES = ("fhir_adapter.store", "fhir_adapter.export")
FLOOR_SAMPLE = 20_000  # resources parsed into dicts for the floor (holding all 1M would not fit)
ROUNDS = 3  # alternating rounds of ours and the floor; the ratio is their median
FLOOR_SECONDS = 1.0  # the floor writes its sample again until this long: 20k alone is ~0.2 s


def _ours(store: Any, folder: Path) -> tuple[int, float]:
    """(resources, seconds) of one `export --study` of the generated study."""
    from fhir_adapter.export import export_ndjson

    start = time.perf_counter()
    summary = export_ndjson(store, folder, "R4", study=STUDY_ID, overwrite=True)
    seconds = time.perf_counter() - start
    for written in summary.counts:
        written.unlink()
    return summary.total, seconds


def _floor(sample: list[dict], target: Path) -> float:
    """resources/s of orjson.dumps of the sample's dicts to one NDJSON file."""
    def write() -> int:
        with open(target, "wb") as fh:
            for resource in sample:
                fh.write(orjson.dumps(resource) + b"\n")
        return len(sample)

    per_second, _, _ = rate(write, min_seconds=FLOOR_SECONDS)
    target.unlink(missing_ok=True)
    return per_second


def run(quick: bool) -> list[dict]:
    """Export the study of the 10k store (quick) or of the 100k store (full run)."""
    wanted = 10_000 if quick else min(100_000, int(settings["top_size"]))
    case = f"export study to NDJSON ({size_label(wanted)} AE store, R4)"
    if gone := missing(*MODULES):
        return [not_available(case, gone, "resources/s", "ratio >= 0.25")]
    from fhir_adapter.store import open_store

    size, path, note = store_for(wanted, quick, fallback=True)
    case = f"export study to NDJSON ({size_label(size)} AE store, R4)"
    store = open_store(str(path))
    try:
        first = store.iter_all(["AdverseEvent"], version="R4")
        sample = [orjson.loads(s.json("R4")) for s in itertools.islice(first, FLOOR_SAMPLE)]
        first.close()  # type: ignore[attr-defined]
        ours, floors, seconds, count = [], [], [], 0
        for _ in range(ROUNDS):
            count, took = _ours(store, OUT / "export")
            seconds.append(took)
            ours.append(count / took)
            floors.append(_floor(sample, OUT / "export.ndjson"))
    finally:
        store.close()
    ratios = sorted(o / f for o, f in zip(ours, floors, strict=True))
    return [result(case, "resources/s", statistics.median(ours),
                   baseline=f"orjson.dumps of {len(sample):,} dicts to NDJSON",
                   baseline_value=statistics.median(floors), target="ratio >= 0.25",
                   ratio=statistics.median(ratios),
                   note=f"{count:,} resources per export via fhir_adapter.export (--study "
                        f"{STUDY_ID}); ratio = median of {ROUNDS} alternating rounds "
                        f"(min-max {ratios[0]:.2f}-{ratios[-1]:.2f}); the first, on the page "
                        f"cache as it was found, took {seconds[0]:.2f} s, the others "
                        + ", ".join(f"{s:.2f}" for s in seconds[1:]) + " s"
                        + (f"; {note}" if note else ""))]
