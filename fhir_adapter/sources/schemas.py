"""Our published input JSON Schemas (fhir_adapter/data/<name>.schema.json), loaded once."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema


@cache
def input_schema(name: str) -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of input format `name`, e.g. enrollment."""
    text = resources.files("fhir_adapter").joinpath("data", f"{name}.schema.json")
    return json.loads(text.read_text("utf-8"))


@cache
def input_validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for input format `name`, built once."""
    return jsonschema.Draft202012Validator(input_schema(name))
