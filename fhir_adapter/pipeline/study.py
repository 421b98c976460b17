"""Study protocols -> ResearchStudy and what it references, validated (map and load)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..output import validated
from ..validation import FhirVersion
from .report import Reporter


def study_resources(paths: list[Path], version: FhirVersion,
                    report: Reporter | None = None) -> Iterator[dict[str, Any]]:
    """Every resource of every study in `paths`, validated; warnings go to `report`."""
    # Imported on use: the command line's start-up does without the mapping modules.
    from ..mapping.study import map_study
    from ..sources.study import read_studies

    seen: set[tuple[str, str]] = set()
    for record in read_studies(paths):
        mapped = map_study(record.study, version, source=record.source)
        if report is not None:
            for text in mapped.warnings:
                report.warn(f"{record.source}: {text}")
        # Shared resources (a sponsor of two studies) are produced once per output.
        fresh = []
        for resource in mapped.resources:
            key = (resource["resourceType"], resource["id"])
            if key not in seen:
                seen.add(key)
                fresh.append(resource)
        yield from validated(fresh, version, record.source)
