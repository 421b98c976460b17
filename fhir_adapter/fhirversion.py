"""FHIR versions and what each one defines: the version names, the `fhir.resources` model of
a type, and the official JSON schema (as published, unchanged). A bottom module: mapping,
validation and the store all ask it, so none of them has to import another for these."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

FhirVersion = Literal["R4", "R5"]
VERSIONS: tuple[FhirVersion, ...] = ("R4", "R5")
FHIR_RELEASE = {"R4": "4.0.1", "R5": "5.0.0"}


def normalise_version(value: str) -> FhirVersion:
    """'R4', 'r4', '4.0', '4.0.1', '5.0' ... -> 'R4' | 'R5'."""
    v = value.strip().upper().removeprefix("R")
    if v.startswith("4"):
        return "R4"
    if v.startswith("5"):
        return "R5"
    raise ValueError(f"unsupported FHIR version {value!r} (use R4 or R5)")


def model_class(version: FhirVersion, resource_type: str) -> Any:
    """The fhir.resources model for a type: R4B models for R4 (same elements for ours)."""
    if version == "R4":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    return get_fhir_model_class(resource_type)


@cache
def official_schema(version: FhirVersion) -> dict[str, Any]:
    """The official FHIR JSON schema of `version` (fhir.schema.json), parsed once; shared, so
    never to be changed in place."""
    name = "r4.schema.json" if version == "R4" else "r5.schema.json"
    text = resources.files("fhir_adapter").joinpath("data", "schema", name).read_text("utf-8")
    return json.loads(text)


def definitions(version: FhirVersion) -> dict[str, Any]:
    """The schema's `definitions`: resource types, data types and backbone elements."""
    return official_schema(version)["definitions"]


def resource_types(version: FhirVersion) -> list[str]:
    """Every resource type the official schema of `version` defines."""
    return sorted(official_schema(version)["discriminator"]["mapping"])
