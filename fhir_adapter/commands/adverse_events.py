"""`fhir-adapter map adverse-events FILE`: SDTM AE (+ SUPPAE) or our adverse-event format ->
AdverseEvent resources, with a one-screen safety summary on stderr."""

from __future__ import annotations

from pathlib import Path

import click

from ..output import write_resources
from ..pipeline.adverse_events import LoadReport, adverse_event_resources
from ..validation import normalise_version
from .options import fhir_version_option, output_options
from .reporting import Console, report_option


@click.command("adverse-events")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--supplemental", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SDTM SUPPAE (CSV or XPT) for an SDTM AE file.")
@click.option("--study", help="Study id (NCT id or sponsor STUDYID) for every event; "
              "overrides STUDYID / study_id.")
@click.option("--intervention", help="Name of the study intervention that relatedness "
              "refers to (our format may name it per row).")
@click.option("--timezone", help="IANA timezone of the sites (e.g. Europe/Berlin) for times "
              "without UTC offset; without it such times keep only their date.")
@fhir_version_option
@output_options
@click.option("--skip-invalid", is_flag=True,
              help="Map the valid rows and report the invalid ones instead of writing nothing.")
@report_option
def map_adverse_events_command(file: Path, supplemental: Path | None, study: str | None,
                               intervention: str | None, timezone: str | None,
                               fhir_version: str, output: str | None, ndjson: bool,
                               skip_invalid: bool, report_file: Path | None,
                               strict: bool) -> None:
    """SDTM AE (+ SUPPAE) in XPT or CSV, or our adverse-event CSV/JSON/JSON Lines (see
    `fhir-adapter schema adverse-event`) -> AdverseEvent resources (R4 also the study
    intervention's Medication), and a summary on stderr."""
    from ..dates import check_timezone

    if timezone:
        try:
            check_timezone(timezone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timezone") from exc
    version = normalise_version(fhir_version)
    report = LoadReport()
    console = Console(report_file)
    resources = adverse_event_resources(file, version, report, supplemental=supplemental,
                                        study=study, timezone=timezone,
                                        intervention=intervention, skip_invalid=skip_invalid,
                                        strict=strict, reporter=console)
    try:
        count = write_resources(resources, output, ndjson)  # bad rows: InputError.rows
    finally:
        console.close()
    source = report.source
    for error in report.skipped:
        click.echo(f"skipped: {error}", err=True)
    for text in source.warnings:
        click.echo(f"warning: {text}", err=True)
    for text, times in report.warnings.items():
        where = report.first_row[text]
        click.echo(f"warning: {text} ({times} event(s), first {where})" if times > 1
                   else f"warning: {where}: {text}", err=True)
    for line in report.summary(version, str(file), source.format):
        click.echo(line, err=True)
    click.echo(f"{count} FHIR {version} resource(s) written"
               + (f" to {output}" if output else ""), err=True)
