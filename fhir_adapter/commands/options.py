"""Options shared by several commands (kept apart from cli.py to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

VERSION_CHOICE = click.Choice(["R4", "R5", "r4", "r5", "4.0.1", "5.0.0"])

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def fhir_version_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--fhir-version R4|R5, default R4 (what hospital EHRs speak)."""
    return click.option("--fhir-version", "fhir_version", type=VERSION_CHOICE, default="R4",
                        show_default=True, help="FHIR version of the output.")(func)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--output PATH and --ndjson, shared by every map command."""
    func = click.option("--ndjson", is_flag=True,
                        help="One resource per line instead of a collection Bundle.")(func)
    return click.option("--output", "-o", type=click.Path(dir_okay=False),
                        help="Write here instead of stdout (replaced only on success).")(func)
