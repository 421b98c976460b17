"""The producer of each source kind: f(paths, version, report=..., **options) -> the validated
resources of one FHIR version (what `map` writes; `load` runs one per version)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..validation import FhirVersion
from .report import Reporter

Resource = dict[str, Any]
# (paths, version, report=..., **options) -> validated resources of that version
Producer = Callable[..., Iterable[Resource]]


def producer(kind: str) -> Producer:
    """The resource-generating function of a source kind (the one its `map` command uses),
    called as f(paths, version, report=..., **options)."""
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r} (study, enrollments, adverse-events)")
    return KINDS[kind][0]


def _studies(paths: list[Path], version: FhirVersion, report: Reporter | None = None, *,
             populations: dict[str, list[str]] | None = None, **options: Any
             ) -> Iterator[Resource]:
    """`populations`: ResearchStudy id -> its analysis-population Groups already stored (a
    load gives them: pipeline/populations.py); `map` has none."""
    from ..mapping.cohort import link_study
    from ..mapping.population import link_populations
    from .study import study_resources

    for resource in study_resources(paths, version, report, **options):
        resource = link_study(resource, version)  # recruitment.actualGroup: cohorts.py
        if populations and resource.get("id") in populations:
            resource = link_populations(resource, populations[resource["id"]])
        yield resource


def _enrollments(paths: list[Path], version: FhirVersion, report: Reporter | None = None, *,
                 skip_invalid: bool = False, today: date | None = None, **options: Any
                 ) -> Iterator[Resource]:
    from .enrollments import enrollment_resources

    said: set[str] = set()

    def noted(where: str, text: str) -> None:
        if report is not None and text not in said:  # each kind once, not once per row
            said.add(text)
            report.warn(f"{where}: {text}")

    def skipped(error: InputError) -> None:
        if report is not None:
            report.warn(f"skipped invalid row: {error}")

    for path in paths:
        yield from enrollment_resources(
            path, version, today=today or date.today(), warn=noted, report=report,
            on_error=skipped if skip_invalid else None, **options)


def _adverse_events(paths: list[Path], version: FhirVersion, report: Reporter | None = None,
                    relay: Any = None, relay_role: str | None = None, **options: Any
                    ) -> Iterator[Resource]:
    """`relay` (parallel.Relay): a parallel load's two producers read each file once, the
    "send" one passing its records on to the "receive" one (which reports nothing)."""
    from .adverse_events import LoadReport, adverse_event_resources

    if relay_role == "send":
        options["passed_on"] = relay.sender
    for path in paths:
        load_report = LoadReport()
        if relay_role == "send":
            relay.begin()
        elif relay_role == "receive":
            options["records"] = relay.receiver()
        try:
            yield from adverse_event_resources(path, version, load_report, tally=False,
                                               reporter=report, **options)
        finally:
            if relay_role == "send":
                relay.end()  # also when the file failed: the receiver stops waiting
        if report is not None:
            for text in load_report.source.warnings:
                report.warn(text)
            for text, times in load_report.warnings.items():
                report.warn(f"{path}: {text}" + (f" ({times} rows)" if times > 1 else ""))
            for error in load_report.skipped:
                report.warn(f"skipped invalid row: {error}")


# Source kind -> its producer and the module the producer imports (the parallel load
# imports it before forking the mapping processes: once for both, rather than in each).
KINDS: dict[str, tuple[Producer, str]] = {
    "study": (_studies, "study"),
    "enrollments": (_enrollments, "enrollments"),
    "adverse-events": (_adverse_events, "adverse_events"),
}
