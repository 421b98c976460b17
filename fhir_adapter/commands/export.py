"""`fhir-adapter export DIR`: stored resources to NDJSON files, one per resource type."""

from __future__ import annotations

from pathlib import Path

import click

from .options import fhir_version_option
from .store import database_option


@click.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@database_option
@fhir_version_option
@click.option("--type", "types", multiple=True,
              help="Only resources of this type (repeatable) [default: every type].")
@click.option("--study", help="Only this study's resources: its ResearchStudy id, NCT id or "
                              "sponsor study id (the study, its subjects and their patients, "
                              "its adverse events, and what the study references).")
@click.option("--since", help="Only resources updated at or after this FHIR instant or date "
                              "(e.g. 2026-01-31T00:00:00Z).")
@click.option("--overwrite", is_flag=True,
              help="Replace the files of an earlier export in DIRECTORY.")
def export_command(directory: Path, database: str | None, fhir_version: str,
                   types: tuple[str, ...], study: str | None, since: str | None,
                   overwrite: bool) -> None:
    """Write the stored resources to DIRECTORY/<Type>.ndjson (FHIR Bulk Data layout), one
    resource per line, as the server serves them; all files appear once the export is done."""
    from ..errors import BadRequest
    from ..export import BadTypeName, export_ndjson
    from ..store import open_store
    from ..store.reading import since_instant
    from ..validation import normalise_version

    if since:
        try:
            since_instant(since)
        except BadRequest as exc:
            raise click.BadParameter("not a FHIR instant or date", param_hint="--since") from exc
    _check_source(database, types)
    store = open_store(database)
    try:
        summary = export_ndjson(store, directory, normalise_version(fhir_version),
                                types=types or None, study=study, since=since,
                                overwrite=overwrite)
    except BadTypeName as exc:  # only this: any other ValueError is not about --type
        raise click.BadParameter(str(exc), param_hint="--type") from exc
    finally:
        store.close()
    for path, count in summary.counts.items():
        click.echo(f"{path}: {count} resource(s)")
    click.echo(f"{summary.total} resource(s) in {len(summary.counts)} file(s)")


def _check_source(database: str | None, types: tuple[str, ...]) -> None:
    """Usage errors for what would otherwise export nothing and exit 0: a SQLite file that
    does not exist (opening it would create an empty one) and a type no store holds."""
    from sqlalchemy.engine import make_url

    from ..store.schema import database_url
    from ..store.searchparams import RESOURCE_TYPES

    url = make_url(database_url(database))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise click.BadParameter(f"no database at {url.database} (nothing to export; load "
                                 "data first or name the database)", param_hint="--database")
    unknown = [t for t in types if t not in RESOURCE_TYPES]
    if unknown:
        raise click.BadParameter(f"{unknown[0]!r} is not a stored resource type; stored types: "
                                 + ", ".join(RESOURCE_TYPES), param_hint="--type")
