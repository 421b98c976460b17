"""A fast yes/no check of input records against our published JSON Schemas (jsonschema-rs);
jsonschema stays the judge that explains what is wrong, and the judge of the rare record the
two regex dialects could disagree on.

Why: jsonschema takes ~0.7 ms per enrollment record here, the bulk of reading a 200,000-row
file, while nearly every row is valid. jsonschema-rs answers in microseconds, but reads
`pattern` as ECMA-262 (as JSON Schema says) where jsonschema uses Python's `re`: `\\s` and
`\\S` disagree on a few characters, `.` on line separators, `$` on a final newline. A record
with a string holding any of them is left to jsonschema, so the answer is jsonschema's for
every record (tests/test_enrollment_source.py checks the two agree on generated records).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema_rs

Check = Callable[[Any], bool]

# Where Python's `re` and ECMA-262 read \s, \S, `.` or `$` differently: \x1c-\x1f and \x85
# are whitespace to Python only, \ufeff to ECMA only; ECMA's `.` stops at \r, \u2028,
# \u2029; Python's `$` also matches before a final \n.
DIALECT_SENSITIVE = re.compile("[\r\x1c-\x1f\x85\u2028\u2029\ufeff]|\n\\Z")


def compile_schema(schema: dict[str, Any]) -> Check:
    """A predicate that is True only for values jsonschema's Draft202012Validator accepts,
    and for all of them but the few with a dialect-sensitive string (False: ask jsonschema)."""
    valid = jsonschema_rs.Draft202012Validator(schema).is_valid

    def check(value: Any) -> bool:
        try:
            return valid(value) and not _sensitive(value)
        except (ValueError, TypeError):  # not JSON (a lone surrogate): let jsonschema judge
            return False

    return check


def _sensitive(value: Any) -> bool:
    """True when a string anywhere in `value` holds a character the dialects disagree on."""
    if isinstance(value, str):
        return DIALECT_SENSITIVE.search(value) is not None
    if isinstance(value, dict):
        return any(_sensitive(k) or _sensitive(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_sensitive(v) for v in value)
    return False
