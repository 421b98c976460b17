"""Validation of FHIR resources in the version they are served in: the `fhir.resources`
models (structure, cardinality, primitive types) AND the official FHIR JSON schema (which
also checks required code values, which the models do not), the latter by `jsonschema-rs`
(a maintained, compiled draft-06 validator: a few microseconds per resource)."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import jsonschema_rs

from . import schema_validators
from .errors import InvalidResource, Issue
from .fhirversion import (  # re-exported: callers above mapping still import them from here
    FHIR_RELEASE,
    VERSIONS,
    FhirVersion,
    model_class,
    normalise_version,
    official_schema,
    resource_types,
)

__all__ = ["FHIR_RELEASE", "VERSIONS", "FhirVersion", "checked", "fhirpath", "is_valid",
           "model_class",
           "model_issues", "normalise_version", "resource_types", "schema_validator",
           "validate"]


def schema_validator(version: FhirVersion, resource_type: str) -> jsonschema_rs.Validator:
    """The official-schema validator of one resource type (schema_validators.py).
    KeyError for a type the schema does not define."""
    return schema_validators.validator(version, resource_type)


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
    bulk paths pass model="per-shape": the model then checks each distinct `structure` once
    (what it adds over the schema, e.g. one value[x] per choice, depends on the structure,
    not the values, which the schema's patterns and enums already check), remembering the
    last Shapes.LIMIT structures that passed.
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
    issues = schema_issues(resource, version, validator)
    if model == "always":
        issues.extend(model_issues(resource, version))
    elif model == "per-shape":
        key = (version, structure(resource))
        if key not in _SHAPES:
            found = model_issues(resource, version)
            if not found:  # only a passing shape may skip the model next time
                _SHAPES.add(key)
            issues.extend(found)
    return _dedupe(issues)


def schema_issues(resource: dict[str, Any], version: FhirVersion,
                  validator: jsonschema_rs.Validator | None = None) -> list[Issue]:
    """What the official schema finds wrong with `resource` (a dict with a known type)."""
    rtype = resource["resourceType"]
    check = validator or schema_validator(version, rtype)
    try:
        if check.is_valid(resource):  # False (no error) for a type it cannot take
            return []
        errors = list(check.iter_errors(resource))
    except (ValueError, TypeError):  # a subclass (JsonDecimal) or not JSON at all
        resource = _plain(resource)
        try:
            if check.is_valid(resource):
                return []
            errors = list(check.iter_errors(resource))
        except (ValueError, TypeError) as exc:  # not JSON: a lone surrogate, a non-text key
            return [Issue("error", "structure", f"not a JSON value: {_short(str(exc))}",
                          rtype)]
    out: list[Issue] = []
    for error in errors:
        inner = _contained(error, version)
        if inner is not None:  # blame inside the contained resource, not the whole entry
            out.extend(Issue(i.severity, i.code, i.message,
                             fhirpath(rtype, error.instance_path)
                             + (i.expression or "").removeprefix(error.instance["resourceType"]))
                       for i in inner)
        else:
            out.append(Issue("error", "invalid", _short(error.message),
                             fhirpath(rtype, error.instance_path)))
    return out


def _plain(value: Any) -> Any:
    """`value` in the exact types jsonschema-rs takes: subclasses of float (the gateway's
    store.canonical.JsonDecimal keeps a decimal's text), int and str as their base type. A
    decimal beyond a double's range (inf, which jsonschema-rs calls no number) becomes 0.5:
    the FHIR schemas type every number "number" and bound none, so the answer is the same."""
    kind = type(value)
    if kind is dict or isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if kind is list or isinstance(value, list):
        return [_plain(v) for v in value]
    if kind in (str, int, bool, float) or value is None:
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else 0.5
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return value  # not JSON: jsonschema-rs says what


def _contained(error: jsonschema_rs.ValidationError, version: FhirVersion
               ) -> list[Issue] | None:
    """At the schema's oneOf over resource types (contained, Bundle.entry.resource), the
    issues of the resource by its own resourceType; None elsewhere or for an unknown type
    (then the oneOf's own message says what is wrong)."""
    if not error.schema_path or error.schema_path[-1] not in ("oneOf",
                                                             schema_validators.KEYWORD):
        return None
    value = error.instance
    rtype = value.get("resourceType") if isinstance(value, dict) else None
    if not isinstance(rtype, str) or rtype not in official_schema(version)["discriminator"][
            "mapping"]:
        return None
    return schema_issues(value, version) or None


ShapeKey = tuple[str, tuple[Any, ...]]


class Shapes:
    """The (version, structure) pairs whose model check passed, the most recently used
    kept: at most `limit`, so a gateway that serves writes for months holds a bounded set,
    not every structure it ever saw."""

    LIMIT = 4096  # a mapping makes a few dozen shapes; the gateway's writes are more varied

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._seen: OrderedDict[ShapeKey, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: object) -> bool:
        try:
            self._seen.move_to_end(key)  # type: ignore[arg-type]  # one hash of the key
        except KeyError:
            return False
        return True

    def add(self, key: ShapeKey) -> None:
        """Remember a passing shape; forget the least recently used beyond the limit."""
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)


_SHAPES = Shapes()


def structure(resource: dict[str, Any]) -> tuple[Any, ...]:
    """The exact structure of a JSON object as a hashable key, without its leaf values: per
    object its keys in order (a tuple), per array its length (an int), per leaf its type,
    depth first. Equal keys: the same objects, keys, arrays and leaf types, only other leaf
    values (which the schema checks every time). Written out flat: it runs per resource."""
    out: list[Any] = []
    add = out.append

    def walk(node: dict[str, Any]) -> None:
        add(tuple(node))
        for value in node.values():
            kind = type(value)
            if kind is dict:
                walk(value)
            elif kind is list:
                add(len(value))
                for item in value:
                    kind = type(item)
                    if kind is dict:
                        walk(item)
                    elif kind is list:  # not in FHIR; kept apart all the same
                        walk({"": item})
                    else:
                        add(kind)
            else:
                add(kind)

    walk(resource)
    return tuple(out)


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


def checked(items: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Each {version: resource} mapping of `items` as it comes, once `validate` found nothing
    in any representation; errors.InvalidResource (with every issue) at the first that fails.
    What a caller hands Store.bulk_upsert when its resources are not validated yet."""
    for reps in items:
        for version, resource in reps.items():
            found = validate(resource, normalise_version(version))
            if found:
                where = (f"{resource.get('resourceType')}/{resource.get('id')}"
                         if isinstance(resource, dict) else "the resource")
                raise InvalidResource(f"{where} is not valid FHIR {version}", found)
        yield reps


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
