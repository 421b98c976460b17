"""Make the official schemas' regular expressions acceptable to jsonschema-rs, at load time.

jsonschema-rs checks a schema against its draft's meta-schema, where `pattern` must be an
ECMA-262 regular expression. In ECMA-262 (unicode mode) a `{` or `}` that is not part of a
`{m}`, `{m,}` or `{m,n}` quantifier is a syntax error; Python's `re` (which the FHIR
schema's patterns were checked with so far) reads it as the literal character. The official
R5 schema has 25 such patterns (its decimal: `...([eE][+-]?[0-9]{1,9}})?$`, a stray `}`).
Escaping the stray brace (`\\}`) gives the same language in both dialects, so nothing that
passed before fails now or the reverse (tests/test_schema_patterns.py lists every change and
checks the rewritten patterns accept and reject the same strings). The vendored schema files
stay as published.
"""

from __future__ import annotations

import re
from typing import Any

_QUANTIFIER = re.compile(r"\{\d+(,\d*)?\}")


def ecma_pattern(pattern: str) -> str:
    """`pattern` with every brace that is not part of a quantifier escaped."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":  # an escape: copy it and the escaped character as they are
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "{":
            quantifier = _QUANTIFIER.match(pattern, i)
            if quantifier and out:  # a quantifier needs something before it
                out.append(quantifier.group())
                i = quantifier.end()
                continue
            char = "\\{"
        elif char == "}":
            char = "\\}"
        out.append(char)
        i += 1
    result = "".join(out)
    return pattern if result == pattern else result


def ecma_patterns(node: Any) -> Any:
    """A copy of a schema (or part of one) whose `pattern` values are `ecma_pattern`ed; the
    parts without a changed pattern are shared with `node`, not copied."""
    if isinstance(node, dict):
        out = {}
        changed = False
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                new = ecma_pattern(value)
            else:
                new = ecma_patterns(value)
            changed = changed or new is not value
            out[key] = new
        return out if changed else node
    if isinstance(node, list):
        items = [ecma_patterns(value) for value in node]
        return items if any(a is not b for a, b in zip(items, node, strict=True)) else node
    return node
