"""Mapping: source records -> validated FHIR JSON, records/s on one core, in this process.

Three pipelines over the same generated input, each from the file to JSON bytes:
- ours: what `fhir-adapter map` runs (source reader, mapping, the project's validation,
  orjson), through the same function the command uses;
- naive: the same reader and mapping, then `fhir.resources` model_validate + model_dump_json
  per resource (the issue's baseline, ~850 AdverseEvents/s when it was filed);
- read + map only: no validation at all, orjson; the most any validation strategy can reach.
And two per-resource stages on the mapped dicts: the validation layer in bulk mode
(`validate(..., model="per-shape")`) + orjson, and the floor, orjson.dumps alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from . import missing, not_available, result, size_label
from .datasets import INTERVENTION, ae_csv, studies_json
from .generate import STUDY_ID

NAME = "mapping"
WARM_UP = 50  # rows (or 2 studies) run through every pipeline before any timing
# cli first: the command modules import it, and it imports them back.
AE_MODULES = ("fhir_adapter.cli", "fhir_adapter.sources.adverse_event",
              "fhir_adapter.mapping.adverse_event", "fhir_adapter.commands.adverse_events")
STUDY_MODULES = ("fhir_adapter.cli", "fhir_adapter.sources.study", "fhir_adapter.mapping.study",
                 "fhir_adapter.commands.study")


def _timed(run: Callable[[], Iterable[Any]]) -> tuple[float, int]:
    start = time.perf_counter()
    count = sum(1 for _ in run())
    return time.perf_counter() - start, count


def _naive(resources: Iterable[dict[str, Any]], version: str) -> Iterator[bytes]:
    from fhir_adapter.validation import model_class

    for resource in resources:
        model = model_class(version, resource["resourceType"]).model_validate(resource)
        yield model.model_dump_json().encode()


def _warm_up(path: Path, version: str, ours: Callable[..., Iterable[Any]],
             mapped: Callable[..., Iterable[dict[str, Any]]]) -> None:
    """One small pass of each pipeline first: imports, compiled schemas and code-table caches
    are paid once per process, not per record, so they stay out of every rate."""
    for _ in ours(path, version):
        pass
    for _ in _naive(mapped(path, version), version):
        pass


def _orjson(resources: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for resource in resources:
        yield orjson.dumps(resource)


# -- SDTM AE ---------------------------------------------------------------------------------

def _ae_ours(path: Path, version: str) -> Iterator[bytes]:
    from fhir_adapter.commands.adverse_events import LoadReport, adverse_event_resources

    yield from _orjson(adverse_event_resources(path, version, LoadReport(), study=STUDY_ID,
                                               intervention=INTERVENTION))


def _ae_mapped(path: Path, version: str) -> Iterator[dict[str, Any]]:
    from fhir_adapter.mapping.adverse_event import map_adverse_event
    from fhir_adapter.sources.adverse_event import open_adverse_events

    seen: set[tuple[str, str]] = set()
    for record in open_adverse_events(path, None, STUDY_ID).records:
        if isinstance(record, Exception):
            raise record
        for resource in map_adverse_event(record, version, intervention=INTERVENTION).resources:
            key = (resource["resourceType"], resource["id"])
            if key not in seen:  # the same dedupe of the study drug's Medication as ours
                seen.add(key)
                yield resource


def _stages(dicts: list[dict[str, Any]], version: str, case: str, unit: str) -> list[dict]:
    """Per-resource costs on already mapped dicts: bulk validation + orjson vs the floor."""
    from fhir_adapter.validation import validate

    start = time.perf_counter()
    for resource in dicts:
        issues = validate(resource, version, model="per-shape")
        if issues:
            raise AssertionError(f"mapped resource invalid: {issues[:3]}")
        orjson.dumps(resource)
    ours = len(dicts) / (time.perf_counter() - start)
    floor_seconds, count = _timed(lambda: _orjson(dicts))
    return [result(f"{case}: validate(per-shape) + orjson per resource", f"{unit}/s", ours,
                   baseline="orjson.dumps floor", baseline_value=count / floor_seconds)]


def _ae(version: str, rows: int, naive_rows: int) -> list[dict]:
    case = f"SDTM AE -> {version} ({size_label(rows)} rows)"
    if gone := missing(*AE_MODULES):
        return [not_available(case, gone, "AdverseEvents/s", "ratio >= 6")]
    path, sample = ae_csv(rows), ae_csv(naive_rows)
    _warm_up(ae_csv(WARM_UP), version, _ae_ours, _ae_mapped)
    ours_s, ours_n = _timed(lambda: _ae_ours(path, version))
    naive_s, naive_n = _timed(lambda: _naive(_ae_mapped(sample, version), version))
    plain_s, plain_n = _timed(lambda: _orjson(_ae_mapped(path, version)))
    dicts = list(_ae_mapped(sample, version))
    per_record = f"{ours_n / rows:.2f} resources per row"
    return [
        result(f"{case}: ours end to end", "rows/s", rows / ours_s,
               baseline=f"naive model_validate+model_dump_json ({size_label(naive_rows)} rows)",
               baseline_value=naive_rows / naive_s, target="ratio >= 6",
               note=f"{per_record}; naive {naive_n} resources"),
        result(f"{case}: read + map, no validation", "rows/s", rows / plain_s,
               baseline="ours end to end", baseline_value=rows / ours_s,
               note=f"{plain_n} resources: the ceiling of any validation strategy"),
        *_stages(dicts, version, f"SDTM AE {version}", "resources"),
    ]


# -- CT.gov studies --------------------------------------------------------------------------

def _study_ours(path: Path, version: str) -> Iterator[bytes]:
    from fhir_adapter.pipeline.study import study_resources

    yield from _orjson(study_resources([path], version))


def _study_mapped(path: Path, version: str) -> Iterator[dict[str, Any]]:
    from fhir_adapter.mapping.study import map_study
    from fhir_adapter.sources.study import read_studies

    seen: set[tuple[str, str]] = set()
    for record in read_studies([path]):
        for resource in map_study(record.study, version, source=record.source).resources:
            key = (resource["resourceType"], resource["id"])
            if key not in seen:  # shared sponsors and sites once, as study_resources does
                seen.add(key)
                yield resource


def _studies(version: str, size: int, naive_size: int) -> list[dict]:
    case = f"CT.gov study -> {version} ({size} studies)"
    if gone := missing(*STUDY_MODULES):
        return [not_available(case, gone, "studies/s")]
    path, sample = studies_json(size), studies_json(naive_size)
    _warm_up(studies_json(2), version, _study_ours, _study_mapped)
    ours_s, ours_n = _timed(lambda: _study_ours(path, version))
    naive_s, _ = _timed(lambda: _naive(_study_mapped(sample, version), version))
    plain_s, _ = _timed(lambda: _orjson(_study_mapped(path, version)))
    dicts = list(_study_mapped(sample, version))
    return [
        result(f"{case}: ours end to end", "studies/s", size / ours_s,
               baseline=f"naive model_validate+model_dump_json ({naive_size} studies)",
               baseline_value=naive_size / naive_s,
               note=f"{ours_n} resources ({ours_n / ours_s:,.0f} resources/s)"),
        result(f"{case}: read + map, no validation", "studies/s", size / plain_s,
               baseline="ours end to end", baseline_value=size / ours_s),
        *_stages(dicts, version, f"CT.gov study {version}", "resources"),
    ]


def run(quick: bool) -> list[dict]:
    """AE rows and CT.gov studies to validated JSON; R4 (and R5 in the full run)."""
    versions = ("R4",) if quick else ("R4", "R5")
    rows, naive_rows = (2_000, 500) if quick else (10_000, 2_000)
    studies, naive_studies = (20, 10) if quick else (200, 50)
    out: list[dict] = []
    for version in versions:
        out += _ae(version, rows, naive_rows)
        out += _studies(version, studies, naive_studies)
    return out
