"""schema_patterns.py: the patterns of the official schemas that jsonschema-rs refuses are
rewritten at load, each to one that accepts and rejects the same strings; nothing else
changes, and the vendored files stay as published."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_adapter.fhirversion import official_schema
from fhir_adapter.schema_patterns import ecma_pattern, ecma_patterns

R5_DECIMAL = r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][+-]?[0-9]{1,9}})?$"


def _patterns(node: Any) -> Counter[str]:
    found: Counter[str] = Counter()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found[value] += 1
            else:
                found += _patterns(value)
    elif isinstance(node, list):
        for value in node:
            found += _patterns(value)
    return found


def _changes(version: str) -> dict[str, tuple[str, int]]:
    return {p: (ecma_pattern(p), n) for p, n in _patterns(official_schema(version)).items()
            if ecma_pattern(p) != p}


def test_what_the_rewrite_changes() -> None:
    """The whole list: R5's decimal (25 uses) gets its stray `}` escaped; R4 is untouched."""
    assert _changes("R4") == {}
    assert _changes("R5") == {
        R5_DECIMAL: (r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE][+-]?[0-9]{1,9}\})?$", 25)}


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_rewritten_schema_compiles_and_the_file_is_unchanged(version: str) -> None:
    name = f"{version.lower()}.schema.json"
    text = resources.files("fhir_adapter").joinpath("data", "schema", name).read_text("utf-8")
    full = official_schema(version)
    assert json.loads(text) == full  # read as published; the rewrite makes a copy
    definitions = ecma_patterns(full["definitions"])
    jsonschema_rs.Draft6Validator({"$schema": full["$schema"], "$ref": "#/definitions/Patient",
                                   "definitions": definitions})
    if _changes(version):
        assert definitions is not full["definitions"]
        assert _patterns(definitions) != _patterns(full["definitions"])
    else:  # nothing to change: shared, not copied
        assert definitions is full["definitions"]


def test_without_the_rewrite_jsonschema_rs_refuses_r5() -> None:
    full = official_schema("R5")
    with pytest.raises(jsonschema_rs.ValidationError, match="is not a \"regex\""):
        jsonschema_rs.Draft6Validator({"$schema": full["$schema"], "$ref": "#/definitions/Patient",
                                       "definitions": full["definitions"]})


@pytest.mark.parametrize("pattern,expected", [
    ("a{1,9}}", r"a{1,9}\}"), ("a{2}", "a{2}"), ("a{2,}", "a{2,}"), ("{", r"\{"),
    ("x{a}", r"x\{a\}"), (r"[{}]", r"[{}]"), (r"\{1\}", r"\{1\}"),
    (r"[\]}]x}", r"[\]}]x\}"), ("}{", r"\}\{")])
def test_braces_outside_quantifiers_are_escaped(pattern: str, expected: str) -> None:
    assert ecma_pattern(pattern) == expected


def _same_answers(old: str, new: str, text: str) -> None:
    assert (re.search(old, text) is None) == (re.search(new, text) is None), (old, text)
    rs = jsonschema_rs.Draft6Validator({"type": "string", "pattern": new})
    assert rs.is_valid(text) == (re.search(old, text) is not None), (new, text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_rewritten_pattern_accepts_and_rejects_the_same_strings(data: st.DataObject) -> None:
    """Strings the original matches (some), near misses and noise: the original (read by
    Python's re, as before), the rewrite (both by re and by jsonschema-rs) agree."""
    old = R5_DECIMAL
    new = ecma_pattern(old)
    text = data.draw(st.one_of(
        st.from_regex(old, fullmatch=True),
        st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3}}?)?", fullmatch=True),
        st.text(alphabet="0123456789.eE+-}{ ", max_size=12)))
    _same_answers(old, new, text)
