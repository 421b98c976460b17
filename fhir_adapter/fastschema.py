"""A compiler for the official FHIR JSON schemas into plain Python closures.

Why not jsonschema or fastjsonschema alone: jsonschema walks the 3-4 MB schema per call
(~2 ms per AdverseEvent here) and fastjsonschema compiles everything reachable from a
resource, which through `contained` is every resource type (~20 s per type). The FHIR schemas
use a small, regular subset of draft-06 ($ref, type, properties, required,
additionalProperties: false, items, enum, const, pattern, and a oneOf over resource types
with a resourceType discriminator), so definitions compile lazily on first use and validate
in tens of microseconds. tests/test_validation.py checks agreement with jsonschema.

For bulk validation, `leaf_checks` gives the test that applies to each leaf (string, number,
boolean, null) of a value: once a value of some structure has passed, another of the same
structure passes exactly when each of its leaves passes its test (structures.py uses this to
skip the walk over objects and arrays; tests/test_fastschema.py pins the equivalence).
Pattern results are remembered per value (a bounded memo): codes and urls repeat.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Path = tuple[str | int, ...]
Errors = list[tuple[Path, str]]
Check = Callable[[Any, Path, Errors], None]
LeafTest = Callable[[Any], bool]  # True when a leaf value passes a node's check

# Remembered results are bounded: at most MEMO_LIMIT values per pattern (every validation,
# the gateway's too) or per leaf test (structures.py, bulk), and only texts up to MEMO_TEXT
# characters (a narrative can be megabytes).
MEMO_LIMIT, LEAF_MEMO_LIMIT, MEMO_TEXT = 1024, 4096, 200

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "null": lambda v: v is None,
}


class SchemaCompiler:
    """Compiles `#/definitions/<name>` of one FHIR JSON schema on demand."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._defs: dict[str, Any] = schema["definitions"]
        self._refs: dict[str, Check] = {}
        self._tests: dict[int, LeafTest] = {}  # id(schema node) -> its leaf test

    def validator(self, definition: str) -> Callable[[Any], Errors]:
        """A function returning every (path, message) problem of a value, [] when valid."""
        if definition not in self._defs:
            raise KeyError(definition)
        check = self._ref(definition)

        def validate(value: Any) -> Errors:
            errors: Errors = []
            check(value, (), errors)
            return errors

        return validate

    def _ref(self, name: str) -> Check:
        if name in self._refs:
            return self._refs[name]
        built: list[Check] = []

        def check(value: Any, path: Path, errors: Errors) -> None:
            if not built:  # compile on first use: most definitions are never reached
                built.append(self._build(self._defs[name]))
            built[0](value, path, errors)

        self._refs[name] = check
        return check

    def _build(self, node: dict[str, Any]) -> Check:
        if "$ref" in node:  # draft-06: siblings of $ref are ignored
            return self._ref(node["$ref"].rsplit("/", 1)[-1])
        if "oneOf" in node:
            return self._one_of_resource(node["oneOf"])
        checks: list[Check] = []
        if "type" in node:
            checks.append(_type_check(node["type"]))
        if "enum" in node:
            checks.append(_enum_check(node["enum"]))
        if "const" in node:
            checks.append(_const_check(node["const"]))
        if "pattern" in node:
            checks.append(_pattern_check(node["pattern"]))
        if "items" in node:
            checks.append(_items_check(self._build(node["items"])))
        if "properties" in node or "required" in node:
            checks.append(self._object_check(node))
        if len(checks) == 1:
            return checks[0]

        def all_of(value: Any, path: Path, errors: Errors) -> None:
            for check in checks:
                check(value, path, errors)

        return all_of

    def _object_check(self, node: dict[str, Any]) -> Check:
        props = {name: self._build(sub) for name, sub in node.get("properties", {}).items()}
        required = tuple(node.get("required", ()))
        closed = node.get("additionalProperties") is False

        def check(value: Any, path: Path, errors: Errors) -> None:
            if not isinstance(value, dict):
                return  # the type check reports it
            for name in required:
                if name not in value:
                    errors.append((path, f"{name!r} is a required property"))
            for key, item in value.items():
                sub = props.get(key)
                if sub is not None:
                    sub(item, (*path, key), errors)
                elif closed:
                    errors.append((path, f"Additional properties are not allowed ({key!r} "
                                         "was unexpected)"))

        return check

    def leaf_checks(self, definition: str, value: Any) -> list[LeafTest] | None:
        """The test of each leaf of `value` (depth first, in dict and list order): True when
        the compiled check of that position finds nothing wrong with a value. None when a
        result may depend on more than leaves (a oneOf over resource types, an enum or const
        on an object or array). Only meaningful for a `value` that `validator` finds valid:
        the checks of objects and arrays then depend on the structure alone (types, keys,
        required, additionalProperties), so a value of the same structure is valid exactly
        when each leaf passes its test."""
        if definition not in self._defs:
            raise KeyError(definition)
        out: list[LeafTest] = []
        try:
            ok = self._leaves({"$ref": f"#/definitions/{definition}"}, value, out)
        except RecursionError:
            return None
        return out if ok else None

    def _leaves(self, node: dict[str, Any] | None, value: Any, out: list[LeafTest]) -> bool:
        while node is not None and "$ref" in node:  # as _build: siblings of $ref ignored
            node = self._defs[node["$ref"].rsplit("/", 1)[-1]]
        if node is not None and "oneOf" in node:
            return False
        if isinstance(value, dict):
            if node is not None and ("enum" in node or "const" in node):
                return False
            props = node.get("properties", {}) if node is not None else {}
            return all(self._leaves(props.get(key), item, out) for key, item in value.items())
        if isinstance(value, list):
            if node is not None and ("enum" in node or "const" in node):
                return False
            items = node.get("items") if node is not None else None
            return all(self._leaves(items, item, out) for item in value)
        if node is None:  # an additional property (the value passed, so allowed): unchecked
            out.append(_anything)
        else:
            key = id(node)
            if key not in self._tests:
                self._tests[key] = _leaf_test(node)
            out.append(self._tests[key])
        return True

    def _one_of_resource(self, options: list[dict[str, Any]]) -> Check:
        names = {opt["$ref"].rsplit("/", 1)[-1] for opt in options}

        def check(value: Any, path: Path, errors: Errors) -> None:
            rtype = value.get("resourceType") if isinstance(value, dict) else None
            if not isinstance(rtype, str) or rtype not in names:
                errors.append((path, f"{rtype!r} is not a known resource type"))
                return
            self._ref(rtype)(value, path, errors)

        return check


def _type_check(kind: str) -> Check:
    test, label = _TYPES[kind], kind

    def check(value: Any, path: Path, errors: Errors) -> None:
        if not test(value):
            errors.append((path, f"{value!r:.80} is not of type {label!r}"))

    return check


def _enum_check(values: list[Any]) -> Check:
    allowed = frozenset(values)

    def check(value: Any, path: Path, errors: Errors) -> None:
        try:
            ok = value in allowed
        except TypeError:  # lists and objects are never enum members
            ok = False
        if not ok:
            errors.append((path, f"{value!r:.80} is not one of {sorted(allowed)!r:.200}"))

    return check


def _const_check(expected: Any) -> Check:
    def check(value: Any, path: Path, errors: Errors) -> None:
        if value != expected:
            errors.append((path, f"{expected!r} was expected"))

    return check


def _pattern_check(pattern: str) -> Check:
    search = re.compile(pattern).search
    seen: dict[str, bool] = {}  # codes, systems and urls repeat: one search per value

    def check(value: Any, path: Path, errors: Errors) -> None:
        if isinstance(value, str):
            ok = seen.get(value)
            if ok is None:
                ok = search(value) is not None
                if len(value) <= MEMO_TEXT:
                    if len(seen) >= MEMO_LIMIT:
                        seen.clear()
                    seen[value] = ok
            if not ok:
                errors.append((path, f"{value!r:.80} does not match {pattern!r:.120}"))

    return check


def _items_check(item: Check) -> Check:
    def check(value: Any, path: Path, errors: Errors) -> None:
        if isinstance(value, list):
            for index, element in enumerate(value):
                item(element, (*path, index), errors)

    return check


def _leaf_test(node: dict[str, Any]) -> LeafTest:
    """What _build(node) checks of a leaf (string, number, boolean, null), as a predicate:
    its type, enum, const and pattern (items and properties only apply to containers)."""
    tests: list[LeafTest] = []
    if "type" in node:
        tests.append(_TYPES[node["type"]])
    if "enum" in node:
        allowed = frozenset(node["enum"])

        def member(value: Any) -> bool:
            try:
                return value in allowed
            except TypeError:
                return False

        tests.append(member)
    if "const" in node:
        expected = node["const"]
        tests.append(lambda value: not value != expected)
    if "pattern" in node:
        search = re.compile(node["pattern"]).search
        tests.append(lambda value: not isinstance(value, str) or search(value) is not None)
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:  # type and pattern, mostly
        first, second = tests
        return lambda value: first(value) and second(value)
    return lambda value: all(test(value) for test in tests)


def _anything(value: Any) -> bool:
    """The test of a leaf that no schema node constrains."""
    return True
