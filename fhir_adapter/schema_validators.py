"""jsonschema-rs validators of the official FHIR schemas, one per resource type, cheap to build.

Every resource type reaches every other through `ResourceList` (the oneOf over all resource
types that `contained`, `Bundle.entry.resource` and `Parameters.parameter.resource` use), so
a validator of the whole graph costs ~70 ms to build (~20 ms of it handing jsonschema-rs the
3-4 MB of definitions), per type and per process: a second or more for a command or a mapping
process that meets a dozen types. So each type's validator is built from the definitions it
reaches without passing through ResourceList (~60 of ~680: a few ms), and ResourceList is a
custom keyword that hands such a value to one validator of the unchanged ResourceList, built
the first time a resource holds resources. The answers are those of the whole schema: the
same definitions decide, only compiled in two parts.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from .fhirversion import FhirVersion, official_schema
from .schema_patterns import ecma_patterns

RESOURCE_LIST = "ResourceList"
KEYWORD = "x-fhir-adapter-resource-list"  # stands for `$ref: ResourceList`


@cache
def definitions(version: FhirVersion) -> dict[str, Any]:
    """The official definitions, with the patterns jsonschema-rs refuses made portable."""
    return ecma_patterns(official_schema(version)["definitions"])


@cache
def validator(version: FhirVersion, resource_type: str) -> jsonschema_rs.Validator:
    """The official-schema validator of one resource type (built once per process, a few
    ms). KeyError for a type the schema does not define."""
    full = official_schema(version)
    if resource_type not in full["discriminator"]["mapping"]:
        raise KeyError(resource_type)
    defs = definitions(version)
    reached = _reached(defs, resource_type)
    part = {name: defs[name] for name in reached}
    part[RESOURCE_LIST] = {KEYWORD: version}
    return jsonschema_rs.Draft6Validator(
        {"$schema": full["$schema"], "$ref": f"#/definitions/{resource_type}",
         "definitions": part},
        validate_formats=False,  # as the draft-06 reference (jsonschema) does by default
        keywords={KEYWORD: _ResourceList})


@cache
def resource_list(version: FhirVersion) -> jsonschema_rs.Validator:
    """The validator of the whole ResourceList (every resource type): built on first need."""
    full = official_schema(version)
    return jsonschema_rs.Draft6Validator(
        {"$schema": full["$schema"], "$ref": f"#/definitions/{RESOURCE_LIST}",
         "definitions": definitions(version)},
        validate_formats=False)


class _ResourceList:
    """The custom keyword: a value where the schema says ResourceList is judged by it."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: Any) -> None:
        self.version: FhirVersion = value

    def validate(self, instance: Any) -> None:
        """Raise (one error, as a oneOf gives) when the whole ResourceList refuses it."""
        check = resource_list(self.version)
        if not check.is_valid(instance):
            raise ValueError(next(iter(check.iter_errors(instance))).message)


def _reached(defs: dict[str, Any], start: str) -> set[str]:
    """The definitions `start` reaches through `$ref`s, not passing through ResourceList."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name == RESOURCE_LIST:
            continue
        seen.add(name)
        todo.extend(_refs(defs[name]))
    return seen


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        for key, value in node.items():
            if key != "$ref":
                out += _refs(value)
        return out
    if isinstance(node, list):
        return [name for value in node for name in _refs(value)]
    return []
