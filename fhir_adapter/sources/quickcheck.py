"""A JSON Schema compiled into one fast yes/no check, for the small subset our published input
schemas use; jsonschema stays the judge that explains what is wrong.

Why: jsonschema takes ~0.7 ms per enrollment record here, the bulk of reading a 200,000-row
file, while nearly every row is valid. So rows are checked by the compiled predicate, and only
a row it rejects goes through jsonschema for the error messages. A keyword outside the subset
is refused when compiling, so a schema edit cannot be silently ignored; tests check that the
two agree on generated records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "title", "description",
                          "examples", "default"})
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: not isinstance(v, bool) and (
        isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
    "number": lambda v: not isinstance(v, bool) and isinstance(v, int | float),
}


def compile_schema(schema: dict[str, Any]) -> Check:
    """A predicate that is True exactly when `schema` (draft 2020-12 subset) accepts a value."""
    return _compile(schema, schema)


def _compile(node: dict[str, Any], root: dict[str, Any]) -> Check:
    checks: list[Check] = []
    for key, value in node.items():
        if key in _ANNOTATIONS or key in ("properties", "patternProperties"):
            continue
        checks.append(_keyword(key, value, node, root))
    if "properties" in node or "patternProperties" in node:
        checks.append(_object(node, root))
    return lambda v: all(check(v) for check in checks)


def _keyword(key: str, value: Any, node: dict[str, Any], root: dict[str, Any]) -> Check:
    if key == "$ref":
        if not value.startswith("#/$defs/"):
            raise ValueError(f"quickcheck: only local #/$defs references, not {value!r}")
        target = _compile(root["$defs"][value.removeprefix("#/$defs/")], root)
        return target
    if key == "type":
        return _TYPES[value]
    if key == "enum":
        allowed = list(value)
        return lambda v: any(_equal(v, a) for a in allowed)
    if key == "pattern":
        search = re.compile(value).search
        return lambda v: not isinstance(v, str) or search(v) is not None
    if key in ("minLength", "maxLength"):
        return _bound(str, len, value, key.startswith("min"))
    if key in ("minItems", "maxItems"):
        return _bound(list, len, value, key.startswith("min"))
    if key in ("minimum", "maximum"):
        return _bound((int, float), lambda v: v, value, key == "minimum")
    if key == "items":
        item = _compile(value, root)
        return lambda v: not isinstance(v, list) or all(item(i) for i in v)
    if key == "required":
        names = list(value)
        return lambda v: not isinstance(v, dict) or all(n in v for n in names)
    if key == "additionalProperties":
        if value is not False:
            raise ValueError("quickcheck: additionalProperties must be false")
        known = set(node.get("properties", {}))
        patterns = [re.compile(p).search for p in node.get("patternProperties", {})]
        return lambda v: not isinstance(v, dict) or all(
            k in known or any(p(k) for p in patterns) for k in v)
    raise ValueError(f"quickcheck: JSON Schema keyword {key!r} is not supported")


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: true and 1 differ, 1 and 1.0 do not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _bound(kinds: Any, measure: Callable[[Any], Any], limit: Any, lower: bool) -> Check:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, kinds):
            return True  # the keyword applies to other types only
        return measure(v) >= limit if lower else measure(v) <= limit
    return check


def _object(node: dict[str, Any], root: dict[str, Any]) -> Check:
    props = {name: _compile(sub, root) for name, sub in node.get("properties", {}).items()}
    patterns = [(re.compile(p).search, _compile(sub, root))
                for p, sub in node.get("patternProperties", {}).items()]

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for key, item in v.items():
            if key in props and not props[key](item):
                return False
            for search, sub in patterns:
                if search(key) and not sub(item):
                    return False
        return True
    return check
