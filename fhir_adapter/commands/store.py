"""`fhir-adapter db init` and `fhir-adapter load study|enrollments|adverse-events|bundle`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .options import VERSION_CHOICE
from .reporting import Console, report_option


def database_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--database URL (or $FHIR_ADAPTER_DATABASE_URL; default ./fhir-adapter.db)."""
    return click.option("--database", envvar="FHIR_ADAPTER_DATABASE_URL",
                        help="SQLite file or URL, or postgresql://... "
                             "[default: fhir-adapter.db in the working directory]")(func)


def _files(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--progress/--no-progress", default=None,
                        help="Show a resource counter on stderr [default: when a terminal].")(func)
    func = database_option(func)
    return click.argument("files", nargs=-1, required=True,
                          type=click.Path(exists=True, path_type=Path))(func)


def _row_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared with `map enrollments` / `map adverse-events` (same mapping)."""
    func = report_option(func)
    func = click.option("--skip-invalid", is_flag=True,
                        help="Store the valid rows and report the invalid ones instead of "
                             "storing nothing.")(func)
    func = click.option("--timezone", help="IANA timezone of the sites for times without "
                                           "UTC offset.")(func)
    return click.option("--study", help="NCT id or sponsor study id the rows belong to.")(func)


def _check_timezone(timezone: str | None) -> None:
    from ..dates import check_timezone

    if timezone:
        try:
            check_timezone(timezone)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--timezone") from exc


def _report(summary: Any) -> None:
    for line in summary.lines():
        click.echo(line)
    click.echo(f"{summary.files} file(s) loaded: {summary}")


@click.group("db")
def db_group() -> None:
    """Manage the store's database."""


@db_group.command("init")
@database_option
def db_init_command(database: str | None) -> None:
    """Create the tables and indexes (idempotent; the store also does it on first use)."""
    from sqlalchemy.engine import make_url

    from ..store import open_store
    from ..store.schema import database_url

    store = open_store(database)
    store.close()
    click.echo(f"database ready: {make_url(database_url(database)).render_as_string()}")


@click.group("load")
def load_group() -> None:
    """Map source files and store them in R4 and R5, one transaction per file."""


def _load(kind: str, files: tuple[Path, ...], database: str | None, progress: bool | None,
          report_file: Path | None = None, **options: Any) -> None:
    from ..pipeline.load import load_files

    given = {k: v for k, v in options.items() if v not in (None, False)}
    console = Console(report_file, progress)
    try:
        # The CLI is single-threaded: map R4 and R5 in two child processes while this writes.
        _report(load_files(kind, list(files), database=database, report=console,
                           parallel=True, **given))
    finally:
        console.close()


@load_group.command("study")
@_files
def load_study_command(files: tuple[Path, ...], database: str | None,
                       progress: bool | None) -> None:
    """ClinicalTrials.gov JSON/XML or SDTM trial design -> ResearchStudy and what it
    references, stored in both FHIR versions."""
    _load("study", files, database, progress)


@load_group.command("enrollments")
@_files
@_row_options
@click.option("--disposition", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SDTM DS (disposition) for an SDTM DM file.")
@click.option("--supplemental", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SDTM SUPPDM for an SDTM DM file.")
@click.option("--deidentify-dates", is_flag=True,
              help="Keep only the year of ResearchSubject dates (HIPAA Safe Harbor).")
def load_enrollments_command(files: tuple[Path, ...], database: str | None,
                             progress: bool | None, **options: Any) -> None:
    """Enrollment CSV/JSON or SDTM DM (+DS) -> Patient and ResearchSubject, stored."""
    _check_timezone(options.get("timezone"))
    _load("enrollments", files, database, progress, **options)


@load_group.command("adverse-events")
@_files
@_row_options
@click.option("--supplemental", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="SDTM SUPPAE for an SDTM AE file.")
@click.option("--intervention", help="Name of the study intervention that relatedness "
                                     "refers to.")
def load_adverse_events_command(files: tuple[Path, ...], database: str | None,
                                progress: bool | None, **options: Any) -> None:
    """Adverse-event CSV/JSON or SDTM AE (+SUPPAE) -> AdverseEvent (R4 also the study
    intervention's Medication), stored."""
    _check_timezone(options.get("timezone"))
    _load("adverse-events", files, database, progress, **options)


@load_group.command("bundle")
@_files
@click.option("--fhir-version", "fhir_version", type=VERSION_CHOICE, default="R4",
              show_default=True, help="FHIR version the resources are written in.")
def load_bundle_command(files: tuple[Path, ...], database: str | None, progress: bool | None,
                        fhir_version: str) -> None:
    """FHIR Bundle(s) or NDJSON, stored as they are (validated, all or nothing per file)."""
    from ..pipeline.bundles import load_bundles
    from ..validation import normalise_version

    _report(load_bundles(list(files), normalise_version(fhir_version), database=database,
                         report=Console(progress=progress)))
