"""FHIR version names and the fhir.resources model of a type: a bottom module, so that
sources and mapping need not import validation for them."""

from __future__ import annotations

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
