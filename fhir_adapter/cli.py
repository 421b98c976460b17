"""The `fhir-adapter` command line: map | validate | schema | load | export | serve | db ..."""

from __future__ import annotations

import sys

import click

from . import __version__
from .commands.options import fhir_version_option, output_options  # noqa: F401 (re-export)
from .errors import FhirError, InputError


def _encoding(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise click.BadParameter(f"unknown encoding {value!r} (e.g. utf-8, cp1252, "
                                     "latin-1, utf-16)") from None
        from .sources.tabular import ENCODING

        ENCODING.set(value)
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fhir-adapter")
@click.option("--encoding", envvar="FHIR_ADAPTER_ENCODING", callback=_encoding,
              expose_value=False, is_eager=True,
              help="Text encoding of CSV input (default UTF-8), e.g. cp1252 or latin-1 for "
                   "Excel exports, utf-16.")
def cli() -> None:
    """Map clinical-trial data (ClinicalTrials.gov, CDISC SDTM, our CSV/JSON) to FHIR R4/R5,
    validate it, store it and serve it over the FHIR REST API."""


@cli.group("map")
def map_group() -> None:
    """Map source files to FHIR and print (or write) the resources."""


def _register() -> None:
    from .commands import adverse_events, study, validate

    map_group.add_command(study.map_study_command)
    map_group.add_command(adverse_events.map_adverse_events_command)
    from .commands import enrollments, schema

    map_group.add_command(enrollments.map_enrollments_command)
    cli.add_command(schema.schema_command)
    cli.add_command(validate.validate_command)
    from .commands import store as store_commands

    cli.add_command(store_commands.db_group)
    cli.add_command(store_commands.load_group)
    from .commands.export import export_command

    cli.add_command(export_command)
    from .commands.serve import serve_command

    cli.add_command(serve_command)
    from .commands.clients import clients_group

    cli.add_command(clients_group)
    from .commands.pull import pull_group
    from .commands.push import push_command

    cli.add_command(push_command)
    cli.add_command(pull_group)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: expected errors become one clear line and a non-zero exit."""
    try:
        cli.main(args=argv, prog_name="fhir-adapter", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except InputError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        sys.exit(2)
    except FhirError as exc:
        click.echo(f"error: {exc.message}", err=True)
        for issue in exc.issues[1:]:
            click.echo(f"  {issue}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        reason = _database_error(exc)
        if reason is None:
            raise
        click.echo(f"error: the database: {reason}", err=True)
        sys.exit(1)


def _database_error(exc: BaseException) -> str | None:
    """The driver's own words when `exc` is SQLAlchemy's wrapper of a database error (the
    file cannot be opened, the server refuses the connection, the disk is full), else None.
    Looked up, not imported: commands that never opened a store do without SQLAlchemy."""
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.DBAPIError):
        return None
    return " ".join(str(exc.orig).split()) or type(exc.orig).__name__


if __name__ == "__main__":
    main()
