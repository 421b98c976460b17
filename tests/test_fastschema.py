"""fastschema.py: the leaf tests (bulk validation) answer as the compiled checks do, and the
remembered pattern results answer as the regular expressions do, however many values pass."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapter import fastschema
from fhir_adapter.validation import _compiler, _schema

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _leaf_nodes(version: str) -> list[dict[str, Any]]:
    """Every schema node a leaf can meet: primitive definitions, and the inline properties
    (codes with an enum, resourceType with a const) of every definition."""
    nodes = []
    for node in _schema(version)["definitions"].values():
        if "properties" not in node and "oneOf" not in node:
            nodes.append(node)
        for sub in node.get("properties", {}).values():
            if "$ref" not in sub and "items" not in sub:
                nodes.append(sub)
            elif "items" in sub and "$ref" not in sub["items"]:
                nodes.append(sub["items"])
    return nodes


NODES = {version: _leaf_nodes(version) for version in ("R4", "R5")}
LEAVES = st.one_of(
    st.text(max_size=12), st.sampled_from(["", " ", "a b", "a  b", "2024", "2024-02-30",
                                           "2024-03-14T08:30:00Z", "1", "-0", "true", "draft",
                                           "AdverseEvent", "Patient/1", "x" * 65]),
    st.integers(-5, 5), st.floats(allow_nan=False), st.booleans(), st.none())


def _passes(check: fastschema.Check, value: Any) -> bool:
    errors: fastschema.Errors = []
    check(value, (), errors)
    return not errors


@pytest.mark.parametrize("version", ["R4", "R5"])
@SETTINGS
@given(data=st.data())
def test_leaf_tests_answer_as_the_compiled_checks(version: str, data: st.DataObject) -> None:
    node = data.draw(st.sampled_from(NODES[version]))
    compiler = _compiler(version)
    test, check = fastschema._leaf_test(node), compiler._build(node)
    strategies = [LEAVES, *(st.sampled_from(node[k]) for k in ("enum",) if k in node)]
    if "const" in node:
        strategies.append(st.just(node["const"]))
    if "pattern" in node and node.get("type") == "string":
        strategies.append(st.from_regex(node["pattern"]))
    value = data.draw(st.one_of(*strategies))
    assert test(value) is _passes(check, value), (node, value)


def test_leaf_checks_need_the_whole_tree_where_a_resource_holds_resources() -> None:
    compiler = _compiler("R4")
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"resourceType": "Basic", "code": {"text": "x"}}}]}
    assert compiler.leaf_checks("Bundle", bundle) is None
    basic = {"resourceType": "Basic", "code": {"text": "x"}, "extra": {"a": [1]}}
    tests = compiler.leaf_checks("Basic", basic)
    assert tests is not None and len(tests) == 3
    assert tests[2](object()) is True  # an unknown element's leaf: nothing applies


def test_remembered_patterns_answer_as_the_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastschema, "MEMO_LIMIT", 16)
    pattern = r"^[A-Za-z0-9\-\.]{1,64}$"
    check, search = fastschema._pattern_check(pattern), re.compile(pattern).search
    values = [f"id-{n}" if n % 3 else f"bad id {n}" for n in range(100)]
    for value in values * 2:  # past the bound, and again: cleared, refilled, still right
        assert _passes(check, value) is (search(value) is not None)
    assert _passes(check, 5)  # not a string: the type check's business


def test_long_texts_are_checked_but_not_remembered() -> None:
    check = fastschema._pattern_check(r"^\S*$")
    long_ok, long_bad = "x" * (fastschema.MEMO_TEXT + 1), "x " * fastschema.MEMO_TEXT
    for _ in range(2):
        assert _passes(check, long_ok) and not _passes(check, long_bad)
    memo = next(c.cell_contents for c in check.__closure__ or ()
                if isinstance(c.cell_contents, dict))
    assert long_ok not in memo and long_bad not in memo
