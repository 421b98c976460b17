"""Validation of FHIR resources in the version they are served in: the `fhir.resources`
models (structure, cardinality, primitive types) AND the official FHIR JSON schema (which
also checks required code values, which the models do not)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, Literal

from .errors import Issue
from .fastschema import SchemaCompiler
from .structures import Plans, make_plan, shape
from .versions import (  # noqa: F401 - re-exported: validation's callers name them here
    FHIR_RELEASE,
    VERSIONS,
    FhirVersion,
    model_class,
    normalise_version,
)


@cache
def _schema(version: FhirVersion) -> dict[str, Any]:
    name = "r4.schema.json" if version == "R4" else "r5.schema.json"
    text = resources.files("fhir_adapter").joinpath("data", "schema", name).read_text("utf-8")
    return json.loads(text)


@cache
def _compiler(version: FhirVersion) -> SchemaCompiler:
    return SchemaCompiler(_schema(version))


@cache
def schema_validator(version: FhirVersion, resource_type: str) -> Any:
    """The compiled official-schema check of one resource type: value -> [(path, message)]."""
    return _compiler(version).validator(resource_type)


@cache
def reference_validator(version: FhirVersion, resource_type: str) -> Any:
    """The same check by the `jsonschema` library (a Draft6Validator): slower, kept as the
    reference that tests hold the compiled validator to. Imported here, not at the top: it
    costs the command line ~100 ms to start."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT6

    full = _schema(version)
    if resource_type not in full["definitions"]:
        raise KeyError(resource_type)
    registry = Registry().with_resource(full["id"], Resource(full, DRAFT6))
    return jsonschema.Draft6Validator({"$ref": f"{full['id']}#/definitions/{resource_type}"},
                                      registry=registry)


def resource_types(version: FhirVersion) -> list[str]:
    """Every resource type the official schema of `version` defines."""
    return sorted(_schema(version)["discriminator"]["mapping"])


def fhirpath(resource_type: str, path: Iterable[Any]) -> str:
    """('arm', 0, 'name') -> 'ResearchStudy.arm[0].name'."""
    out = resource_type
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("", "__root__"):
            out += f".{part}"
    return out


def validate(resource: Any, version: FhirVersion,
             model: Literal["always", "per-shape", "never"] = "always") -> list[Issue]:
    """Every problem with `resource` in `version`, as OperationOutcome issues ([] = valid).

    The official schema checks every resource. The `fhir.resources` model costs ~0.3 ms, so
    bulk paths pass model="per-shape": the model then checks each distinct structure once
    (what it adds over the schema, e.g. one value[x] per choice, depends on the structure,
    not the values, which the schema's patterns and enums already check). Per shape, the
    schema check is also cut to the leaves once resources of that exact structure have
    passed (structures.Plan): the same answer for a fraction of the walk.
    """
    if not isinstance(resource, dict):
        return [Issue("error", "structure", "a FHIR resource must be a JSON object")]
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return [Issue("error", "required", "resourceType is missing", "resourceType")]
    try:
        validator = schema_validator(version, rtype)
    except KeyError:
        return [Issue("error", "not-supported",
                      f"{rtype!r} is not a FHIR {version} resource type", "resourceType")]
    if model == "per-shape":
        return _per_shape(resource, version, rtype, validator)
    issues = _schema_issues(rtype, validator(resource))
    if model == "always":
        issues.extend(model_issues(resource, version))
    return _dedupe(issues)


def _schema_issues(rtype: str, errors: list[tuple[Any, str]]) -> list[Issue]:
    return [Issue("error", "invalid", _short(message), fhirpath(rtype, path))
            for path, message in errors]


_SHAPES: set[tuple[str, frozenset[tuple[str, str]]]] = set()
_PLANS = Plans()


def _per_shape(resource: dict[str, Any], version: FhirVersion, rtype: str,
               validator: Any) -> list[Issue]:
    """validate(model="per-shape"): the schema (by its leaves when a resource of the same
    exact structure passed before: structures.py, else in full), then the model once per
    `shape`."""
    plan, key, leaves = _PLANS.find(version, rtype, resource)
    if plan is not None and plan.passes(leaves):
        issues: list[Issue] = []
        form = plan.shape
    else:
        issues = _schema_issues(rtype, validator(resource))
        form = shape(resource)
        if key is not None and plan is None and not issues:
            _PLANS.valid(key, lambda: make_plan(
                _compiler(version).leaf_checks(rtype, resource), leaves, form))
    found_key = (version, form)
    if found_key not in _SHAPES:
        found = model_issues(resource, version)
        if not found:  # only a passing shape may skip the model next time
            _SHAPES.add(found_key)
        issues.extend(found)
    return _dedupe(issues)


def model_issues(resource: dict[str, Any], version: FhirVersion) -> list[Issue]:
    """What the fhir.resources model of the type finds wrong."""
    from pydantic import ValidationError

    rtype = resource["resourceType"]
    try:
        model_class(version, rtype).model_validate(resource)
    except ValidationError as exc:
        return [
            Issue("error", "structure", _short(err["msg"]),
                  fhirpath(rtype, [p for p in err["loc"] if p != rtype]))
            for err in exc.errors()
        ]
    except (ValueError, TypeError, LookupError) as exc:  # fhir_core raises these for bad shapes
        return [Issue("error", "structure", _short(str(exc)), rtype)]
    return []


def is_valid(resource: dict[str, Any], version: FhirVersion) -> bool:
    """True when `validate` finds nothing."""
    return not validate(resource, version)


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str | None, str]] = set()
    out = []
    for issue in issues:
        key = (issue.expression, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out
