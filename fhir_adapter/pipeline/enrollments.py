"""Enrollment files -> Patient and ResearchSubject per subject, validated, streamed (map and
load)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..validation import FhirVersion, validate
from .checks import findings_error
from .report import Reporter


def enrollment_resources(path: Path, version: FhirVersion, *, today: date,
                         disposition: Path | None = None, supplemental: Path | None = None,
                         study: str | None = None, timezone: str | None = None,
                         deidentify_dates: bool = False, strict: bool = False,
                         on_error: Callable[[InputError], None] | None = None,
                         warn: Callable[[str, str], None] | None = None,
                         report: Reporter | None = None,
                         ) -> Iterator[dict[str, Any]]:
    """Patient and ResearchSubject of every subject in `path`, validated, streamed.

    A bad row raises InputError, unless `on_error` is given: then it is passed there and the
    row skipped. `warn(where, text)` gets what could not be mapped; `report` the data-quality
    findings (under `strict` a row with findings is a bad row)."""
    from ..findings import mark
    from ..mapping.subject import map_subject
    from ..sources.enrollment import read_enrollments

    items = read_enrollments(path, disposition=disposition, supplemental=supplemental,
                             study=study)
    for item in items:
        if not isinstance(item, InputError):
            refused = findings_error(item.findings, report, strict)
            if refused is not None:
                item = refused
        if isinstance(item, InputError):
            if on_error is None:
                raise item
            on_error(item)
            continue
        mapped = map_subject(item, version, today=today, timezone=timezone,
                             deidentify_dates=deidentify_dates)
        for resource in mapped.resources:
            mark(resource, item.findings)
        problems = [f"{r['resourceType']}: {issue}" for r in mapped.resources
                    for issue in validate(r, version, model="per-shape")[:3]]
        if problems:
            error = InputError(item.file, f"maps to invalid FHIR {version}: "
                               + "; ".join(problems), item.row)
            if on_error is None:
                raise error
            on_error(error)
            continue
        if warn:
            for text in mapped.warnings:
                warn(f"{item.file}, row {item.row}", text)
        yield from mapped.resources
