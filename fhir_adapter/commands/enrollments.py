"""`fhir-adapter map enrollments FILE`: study participants -> Patient + ResearchSubject."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import click

from ..dates import check_timezone
from ..errors import InputError
from ..output import write_resources
from ..validation import FhirVersion, normalise_version, validate
from .options import fhir_version_option, output_options


def enrollment_resources(path: Path, version: FhirVersion, *, today: date,
                         disposition: Path | None = None, supplemental: Path | None = None,
                         study: str | None = None, timezone: str | None = None,
                         deidentify_dates: bool = False,
                         on_error: Callable[[InputError], None] | None = None,
                         warn: Callable[[str, str], None] | None = None,
                         ) -> Iterator[dict[str, Any]]:
    """Patient and ResearchSubject of every subject in `path`, validated, streamed.

    A bad row raises InputError, unless `on_error` is given: then it is passed there and the
    row skipped. `warn(where, text)` gets what could not be mapped."""
    from ..mapping.subject import map_subject
    from ..sources.enrollment import read_enrollments

    items = read_enrollments(path, disposition=disposition, supplemental=supplemental,
                             study=study)
    for item in items:
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
        yield from mapped.resources


class _Report:
    """Warnings to stderr, each kind once with a count (a 200,000-row file would repeat
    them all); skipped rows one line each."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.skipped = 0

    def warn(self, where: str, text: str) -> None:
        if text not in self.counts:
            click.echo(f"warning: {where}: {text}", err=True)
        self.counts[text] = self.counts.get(text, 0) + 1

    def skip(self, error: InputError) -> None:
        self.skipped += 1
        click.echo(f"skipped: {error}", err=True)

    def summary(self) -> None:
        for text, count in self.counts.items():
            if count > 1:
                click.echo(f"warning: ({count} rows in all) {text}", err=True)


@click.command("enrollments")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--disposition", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SDTM DS (disposition) file, XPT or CSV, for SDTM DM input.")
@click.option("--supplemental", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SDTM SUPPDM file, XPT or CSV, for SDTM DM input.")
@click.option("--study", help="The study (NCT id or sponsor study id); takes precedence over "
              "the file's (SDTM STUDYID, the study column).")
@fhir_version_option
@output_options
@click.option("--skip-invalid", is_flag=True,
              help="Map the valid rows and report the invalid ones, instead of rejecting the "
              "whole file.")
@click.option("--deidentify-dates", is_flag=True,
              help="Keep only the year of ResearchSubject dates (period, progress), as HIPAA "
              "Safe Harbor asks. Patient dates are always the year only.")
@click.option("--timezone", help="IANA timezone (e.g. America/Antigua) of times of day that "
              "carry no UTC offset; without it such times keep only their date.")
def map_enrollments_command(file: Path, disposition: Path | None, supplemental: Path | None,
                            study: str | None, fhir_version: str, output: str | None,
                            ndjson: bool, skip_invalid: bool, deidentify_dates: bool,
                            timezone: str | None) -> None:
    """Enrollments -> a de-identified Patient and a ResearchSubject per subject.

    FILE is our enrollment format (CSV, JSON or JSON Lines; `fhir-adapter schema enrollment`)
    or CDISC SDTM DM (XPT or CSV), told apart by its columns. By default one bad row rejects
    the whole file and nothing is written."""
    version = normalise_version(fhir_version)
    if timezone:
        try:
            check_timezone(timezone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timezone") from exc
    report = _Report()
    count = write_resources(
        enrollment_resources(file, version, today=date.today(), disposition=disposition,
                             supplemental=supplemental, study=study, timezone=timezone,
                             deidentify_dates=deidentify_dates,
                             on_error=report.skip if skip_invalid else None, warn=report.warn),
        output, ndjson)
    report.summary()
    click.echo(f"{count} FHIR {version} resource(s) written" + (f" to {output}" if output else "")
               + (f"; {report.skipped} invalid row(s) skipped" if skip_invalid else ""), err=True)
