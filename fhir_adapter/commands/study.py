"""`fhir-adapter map study FILE...`: study protocols -> ResearchStudy and what it references."""

from __future__ import annotations

from pathlib import Path

import click

from ..output import write_resources
from ..pipeline.study import study_resources
from ..validation import normalise_version
from .options import fhir_version_option, output_options
from .reporting import Console


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
        study_resources(list(files), version, Console()),
        output, ndjson)
    click.echo(f"{count} FHIR {version} resource(s) written"
               + (f" to {output}" if output else ""), err=True)
