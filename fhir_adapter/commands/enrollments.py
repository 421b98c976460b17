"""`fhir-adapter map enrollments FILE`: study participants -> Patient + ResearchSubject."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from ..dates import check_timezone
from ..errors import InputError
from ..output import write_resources
from ..pipeline.enrollments import enrollment_resources
from ..validation import normalise_version
from .options import fhir_version_option, output_options
from .reporting import Console, report_option


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
@report_option
def map_enrollments_command(file: Path, disposition: Path | None, supplemental: Path | None,
                            study: str | None, fhir_version: str, output: str | None,
                            ndjson: bool, skip_invalid: bool, deidentify_dates: bool,
                            timezone: str | None, report_file: Path | None,
                            strict: bool) -> None:
    """Enrollments -> a de-identified Patient and a ResearchSubject per subject.

    FILE is our enrollment format (CSV, JSON or JSON Lines; `fhir-adapter schema enrollment`)
    or CDISC SDTM DM (XPT or CSV), told apart by its columns. By default one bad row rejects
    the whole file and nothing is written; rows whose values contradict each other are mapped
    as recorded and reported as findings (--strict refuses them)."""
    version = normalise_version(fhir_version)
    if timezone:
        try:
            check_timezone(timezone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timezone") from exc
    report = _Report()
    console = Console(report_file)
    try:
        count = write_resources(
            enrollment_resources(file, version, today=date.today(), disposition=disposition,
                                 supplemental=supplemental, study=study, timezone=timezone,
                                 deidentify_dates=deidentify_dates, strict=strict,
                                 on_error=report.skip if skip_invalid else None,
                                 warn=report.warn, report=console),
            output, ndjson)
    finally:
        console.close()
    report.summary()
    for line in console.summary():
        click.echo(line, err=True)
    click.echo(f"{count} FHIR {version} resource(s) written" + (f" to {output}" if output else "")
               + (f"; {report.skipped} invalid row(s) skipped" if skip_invalid else ""), err=True)
