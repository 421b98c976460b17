"""`fhir-adapter validate FILE`: a resource, a Bundle or NDJSON, every issue with its path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from ..errors import InputError, Issue
from ..validation import FhirVersion, normalise_version, validate


def iter_resources(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, resource) for a JSON resource, each entry of a Bundle (and the Bundle), or
    each line of NDJSON."""
    data = path.read_bytes()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    if doc is None:
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"line {number}", orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(str(path), f"neither JSON nor NDJSON ({exc})", number) from exc
        return
    if not isinstance(doc, dict) or "resourceType" not in doc:
        raise InputError(str(path), "not a FHIR resource (no resourceType)")
    yield "", doc


def _entries(resource: dict[str, Any]) -> int:
    """How many resources a Bundle holds (its entries with a resource); 0 for others."""
    entries = resource.get("entry") if resource.get("resourceType") == "Bundle" else None
    return sum(1 for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)
               ) if isinstance(entries, list) else 0


def validate_file(path: Path, version: FhirVersion) -> tuple[int, list[tuple[str, Issue]]]:
    """Validate every resource of a file; returns (resource count, located issues). A Bundle
    counts with its entries' resources (each is checked as part of the Bundle)."""
    count, found = 0, []
    for where, resource in iter_resources(path):
        count += 1 + _entries(resource)
        for issue in validate(resource, version):
            found.append((where, issue))
    if not count:
        raise InputError(str(path), "empty file: no FHIR resource in it")
    return count, _once(found)


_UNEXPECTED = re.compile(r"Additional properties are not allowed \((.*) (?:was|were) unexpected")


def _once(found: list[tuple[str, Issue]]) -> list[tuple[str, Issue]]:
    """Each unknown element once: the schema's "Additional properties ... ('x' was
    unexpected)" at a path, not also the model's "Extra inputs are not permitted" at x."""
    unexpected = {(where, f"{issue.expression}.{name}")
                  for where, issue in found
                  if (match := _UNEXPECTED.search(issue.message))
                  for name in re.findall(r"'([^']+)'", match.group(1))}
    return [(where, issue) for where, issue in found
            if not (issue.message.startswith("Extra inputs are not permitted")
                    and (where, issue.expression) in unexpected)]


def _other_version(path: Path, version: FhirVersion) -> str | None:
    """The other FHIR version when the file is valid in it (the hint a user needs)."""
    other: FhirVersion = "R5" if version == "R4" else "R4"
    try:
        return other if not validate_file(path, other)[1] else None
    except InputError:
        return None


@click.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fhir-version", "fhir_version", default="R4", show_default=True,
              help="FHIR version to validate against (R4 or R5).")
def validate_command(file: Path, fhir_version: str) -> None:
    """Validate a FHIR resource, a Bundle or NDJSON; print every issue with its location."""
    version = normalise_version(fhir_version)
    count, found = validate_file(file, version)
    for where, issue in found:
        prefix = f"{file}" + (f" {where}" if where else "")
        click.echo(f"{prefix}: {issue}")
    if found:
        click.echo(f"{len(found)} issue(s) in {count} resource(s): not valid FHIR {version}",
                   err=True)
        other = _other_version(file, version)
        if other:
            click.echo(f"hint: the file is valid FHIR {other}: pass --fhir-version {other}",
                       err=True)
        raise SystemExit(1)
    click.echo(f"{file}: {count} resource(s) valid FHIR {version}")
