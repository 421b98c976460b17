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
    """Patient and ResearchSubject of every subject in `path`, validated, streamed; then a
    Group per analysis population (SUPPDM ITT, SAFETY, ...) of the subjects mapped.

    A bad row raises InputError, unless `on_error` is given: then it is passed there and the
    row skipped. `warn(where, text)` gets what could not be mapped; `report` the data-quality
    findings (under `strict` a row with findings is a bad row)."""
    from ..mapping.population import map_population
    from ..mapping.subject import map_subject
    from ..sources.enrollment import read_enrollments

    # (study, population code) -> (label, member Patient ids): kept until the file is read
    populations: dict[tuple[str, str], tuple[str | None, list[str]]] = {}

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
        for population in item.populations:
            members = populations.setdefault((item.study, population.code),
                                             (population.label, []))[1]
            members.append(mapped.resources[0]["id"])  # the Patient
        yield from mapped.resources
    for (key, code), (label, members) in populations.items():
        group = map_population(key, code, label, members, version)
        issues = validate(group, version, model="per-shape")
        if issues:
            raise InputError(str(path), f"population {code} maps to invalid FHIR {version}: "
                             + "; ".join(str(i) for i in issues[:3]))
        yield group
