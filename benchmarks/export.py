"""Bulk export: every resource of the generated study, from the store to NDJSON files as
`fhir-adapter export --study` writes them (fhir_adapter.export: the study's scope, then
streamed stored bytes), resources/s, against the orjson floor: `orjson.dumps` of the same
resources as dicts, written to one NDJSON file."""

from __future__ import annotations

import time

import orjson

from . import OUT, missing, not_available, result, settings, size_label
from .datasets import store_for
from .generate import STUDY_ID

NAME = "export"
MODULES = ("fhir_adapter.store", "fhir_adapter.export")
FLOOR_SAMPLE = 20_000  # resources parsed into dicts for the floor (holding all 1M would not fit)


def run(quick: bool) -> list[dict]:
    """Export the 10k store (quick) or the 100k store (full run)."""
    wanted = 10_000 if quick else min(100_000, int(settings["top_size"]))
    case = f"export study to NDJSON ({size_label(wanted)} AE store, R4)"
    if gone := missing(*MODULES):
        return [not_available(case, gone, "resources/s", "ratio >= 0.25")]
    from fhir_adapter.export import export_ndjson
    from fhir_adapter.store import open_store

    size, path, note = store_for(wanted, quick, fallback=True)
    case = f"export study to NDJSON ({size_label(size)} AE store, R4)"
    store = open_store(str(path))
    folder, target = OUT / "export", OUT / "export.ndjson"
    try:
        sample: list[dict] = []
        start = time.perf_counter()
        summary = export_ndjson(store, folder, "R4", study=STUDY_ID, overwrite=True)
        seconds = time.perf_counter() - start
        count = summary.total
        for written in summary.counts:
            written.unlink()
        for stored in store.iter_all(["AdverseEvent"], version="R4"):
            sample.append(orjson.loads(stored.json("R4")))
            if len(sample) >= FLOOR_SAMPLE:
                break
    finally:
        store.close()
    start = time.perf_counter()
    with open(target, "wb") as fh:
        for resource in sample:
            fh.write(orjson.dumps(resource) + b"\n")
    floor = len(sample) / (time.perf_counter() - start)
    target.unlink(missing_ok=True)
    return [result(case, "resources/s", count / seconds,
                   baseline=f"orjson.dumps of {len(sample):,} dicts to NDJSON",
                   baseline_value=floor, target="ratio >= 0.25",
                   note=f"{count:,} resources in {seconds:.2f} s via fhir_adapter.export "
                        f"(--study {STUDY_ID})"
                        + (f"; {note}" if note else ""))]
