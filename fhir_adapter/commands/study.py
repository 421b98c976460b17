"""`fhir-adapter map study FILE...`: study protocols -> ResearchStudy and what it references."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..output import validated, write_resources
from ..validation import FhirVersion, normalise_version
from .options import fhir_version_option, output_options


def study_resources(paths: list[Path], version: FhirVersion,
                    warn: Any = None) -> Iterator[dict[str, Any]]:
    """Every resource of every study in `paths`, validated; warnings go to `warn(text)`."""
    from ..mapping.study import map_study
    from ..sources.study import read_studies

    seen: set[tuple[str, str]] = set()
    for record in read_studies(paths):
        mapped = map_study(record.study, version, source=record.source)
        for text in mapped.warnings:
            if warn:
                warn(f"{record.source}: {text}")
        # Shared resources (a sponsor of two studies) are produced once per output.
        fresh = []
        for resource in mapped.resources:
            key = (resource["resourceType"], resource["id"])
            if key not in seen:
                seen.add(key)
                fresh.append(resource)
        yield from validated(fresh, version, record.source)


@click.command("study")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@fhir_version_option
@output_options
def map_study_command(files: tuple[Path, ...], fhir_version: str, output: str | None,
                      ndjson: bool) -> None:
    """ClinicalTrials.gov v2 JSON / legacy XML, or SDTM trial design (TS/TA/TI/TE: a folder or
    the files named together) -> one Bundle of ResearchStudy, Organization, Practitioner,
    PractitionerRole, Location and Group resources."""
    version = normalise_version(fhir_version)
    count = write_resources(
        study_resources(list(files), version, warn=lambda t: click.echo(f"warning: {t}", err=True)),
        output, ndjson)
    click.echo(f"{count} FHIR {version} resource(s) written"
               + (f" to {output}" if output else ""), err=True)
