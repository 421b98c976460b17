"""`fhir-adapter schema NAME`: print one of the JSON Schemas of our input formats."""

from __future__ import annotations

from importlib import resources

import click

SUFFIX = ".schema.json"


def schema_names() -> list[str]:
    """Names of the published schemas: every fhir_adapter/data/<name>.schema.json."""
    data = resources.files("fhir_adapter").joinpath("data")
    return sorted(entry.name[: -len(SUFFIX)] for entry in data.iterdir()
                  if entry.name.endswith(SUFFIX))


@click.command("schema")
@click.argument("name", type=click.Choice(schema_names()))
def schema_command(name: str) -> None:
    """Print the JSON Schema (draft 2020-12) of our input format NAME, e.g. enrollment."""
    text = resources.files("fhir_adapter").joinpath("data", name + SUFFIX).read_text("utf-8")
    click.echo(text, nl=not text.endswith("\n"))
