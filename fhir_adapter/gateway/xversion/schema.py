"""What the official JSON schemas say about an element, for the conversion: its type, whether
it repeats, its required codes, and which types an extension's value[x] can hold."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from ...fhirversion import FhirVersion, definitions

RELEASE = {"R4": "4.0", "R5": "5.0"}
# The lookups below run ~280 times per converted resource (~30% of a conversion): their
# answers are remembered, bounded, as the names asked about come from clients' JSON keys.
LOOKUPS = 8192


def xver_prefix(version: FhirVersion) -> str:
    """The stem of the official cross-version extensions for elements of `version`."""
    return f"http://hl7.org/fhir/{RELEASE[version]}/StructureDefinition/extension-"


@cache
def properties(version: FhirVersion, owner: str) -> dict[str, dict[str, Any]]:
    """Property name -> its schema, of one definition (a resource, datatype or backbone)."""
    return definitions(version).get(owner, {}).get("properties", {})


@lru_cache(maxsize=LOOKUPS)
def element_type(version: FhirVersion, owner: str | None, name: str) -> str | None:
    """The FHIR type of property `name` of `owner` ('code' for inline enums)."""
    spec = properties(version, owner).get(name) if owner else None
    if spec is None:
        return None
    ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
    if ref:
        return ref.rsplit("/", 1)[-1]
    if "enum" in spec or "enum" in spec.get("items", {}):
        return "code"
    for primitive in _PRIMITIVES:  # choice primitives are inline: occurrenceDateTime
        if name.endswith(primitive[0].upper() + primitive[1:]):
            return primitive
    return None


# Longest first: DateTime before Time, UnsignedInt before Int.
_PRIMITIVES = ("base64Binary", "unsignedInt", "positiveInt", "canonical", "integer64",
               "dateTime", "markdown", "instant", "boolean", "decimal", "integer", "string",
               "date", "time", "code", "uuid", "url", "uri", "oid", "id")


@lru_cache(maxsize=LOOKUPS)
def repeats(version: FhirVersion, owner: str | None, name: str) -> bool:
    """Is property `name` of `owner` a list?"""
    spec = properties(version, owner).get(name) if owner else None
    return bool(spec and spec.get("type") == "array")


@lru_cache(maxsize=LOOKUPS)
def codes(version: FhirVersion, owner: str | None, name: str) -> tuple[str, ...] | None:
    """The allowed codes of a required-binding property (None: any value of its type)."""
    spec = properties(version, owner).get(name) if owner else None
    if not spec:
        return None
    found = spec.get("enum") or spec.get("items", {}).get("enum")
    return tuple(found) if found is not None else None  # remembered: not to be changed


def is_primitive(type_name: str | None) -> bool:
    """FHIR primitive types start with a lower-case letter (code, dateTime, ...)."""
    return bool(type_name) and type_name[0].islower()  # type: ignore[index]


def is_backbone(type_name: str | None) -> bool:
    """Backbone elements are named Owner_Element in the schema."""
    return bool(type_name) and "_" in type_name  # type: ignore[operator]


def value_key(version: FhirVersion, type_name: str) -> str | None:
    """Extension.value[x] key holding `type_name` in `version` (None: not allowed there)."""
    key = "value" + type_name[0].upper() + type_name[1:]
    return key if key in properties(version, "Extension") else None


def choice_base(version: FhirVersion, owner: str | None, key: str) -> str:
    """`occurrence` for `occurrenceDateTime` (a choice element), else `key` itself."""
    type_name = element_type(version, owner, key)
    if not type_name:
        return key
    suffix = type_name[0].upper() + type_name[1:]
    if key.endswith(suffix) and len(key) > len(suffix):
        base = key[:-len(suffix)]
        others = [k for k in properties(version, owner) if k != key and k.startswith(base)
                  and len(k) > len(base) and k[len(base)].isupper()]
        if others:
            return base
    return key
