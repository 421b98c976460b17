"""structures.py: bulk validation by leaves gives exactly the full check's answer. Resources
of the golden files and the official examples, with their leaves (and sometimes their shape)
mutated the way real data goes wrong, are validated per shape, many times per structure (so
that plans are made, compiled and reused), and compared with the full schema check."""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES
from golden import GOLDEN
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapter import structures, validation
from fhir_adapter.structures import Plans, compile_extract, make_plan, shape, structure
from fhir_adapter.validation import _compiler, schema_validator, validate


def _corpus() -> list[tuple[str, dict[str, Any]]]:
    """(version, valid resource): every resource of the golden files, the official examples."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(GOLDEN.rglob("*.expected.json")):
        version = "R5" if ".r5." in path.name else "R4"
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data = data.get("resources", [data])
        for resource in data:
            if isinstance(resource, dict) and "resourceType" in resource:
                out.append((version, resource))
        # a Bundle: resources inside resources are left to the full check (oneOf)
        out.append((version, {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": r} for r in data[:3] if isinstance(r, dict)]}))
    for version in ("r4", "r5"):
        for path in sorted((FIXTURES / "fhir" / "examples" / version).glob("*.json")):
            out.append((version.upper(), json.loads(path.read_text())))
    # one of each (version, type, structure): enough variety, fast enough
    seen, unique = set(), []
    for version, resource in out:
        key = (version, resource["resourceType"], structure(resource)[0])
        if key not in seen and not validate(resource, version, model="never"):
            seen.add(key)
            unique.append((version, resource))
    return unique


CORPUS = _corpus()
SETTINGS = settings(max_examples=120, deadline=None, report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow])
# Leaf values shaped like real mistakes, by JSON type (same type: same structure).
JUNK: dict[type, st.SearchStrategy[Any]] = {
    str: st.one_of(st.sampled_from(["", " ", "x ", "2020-13-01", "2020-02-30T25:00:00Z",
                                    "2024-03-14", "2024-03-14T08:30:00+01:00", "actual",
                                    "bogus code", "http://x y", "Patient/1", "a" * 70,
                                    "resolved", "MILD", "urn:uuid:1", "\t"]),
                   st.text(max_size=6)),
    bool: st.booleans(),
    int: st.integers(-3, 3),
    float: st.floats(allow_nan=False, width=32),
    type(None): st.none(),
}
ANY_LEAF = st.one_of(*JUNK.values(), st.just({}), st.just([]), st.just({"x": 1}))


def _leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


def _set(node: Any, path: tuple, value: Any) -> None:
    _get(node, path[:-1])[path[-1]] = value


def _mutant(data: st.DataObject, resource: dict[str, Any], same_shape: bool) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    paths = [p for p in _leaf_paths(out) if p != ("resourceType",)]
    for _ in range(data.draw(st.integers(0, 3))):
        where = data.draw(st.sampled_from(paths))
        kind = type(_get(out, where))
        _set(out, where, data.draw(JUNK[kind] if same_shape and kind in JUNK else ANY_LEAF))
    return out


def _schema_part(issues: list) -> list:
    return [i for i in issues if i.code == "invalid"]


@pytest.fixture(autouse=True)
def fresh_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without plans, so that making them is exercised too, and compiles
    them sooner than in bulk (the same code either way)."""
    monkeypatch.setattr(validation, "_PLANS", Plans())
    monkeypatch.setattr(Plans, "COMPILE_AFTER", 4)


@SETTINGS
@given(data=st.data())
def test_per_shape_agrees_with_the_full_check(data: st.DataObject) -> None:
    version, base = data.draw(st.sampled_from(CORPUS))
    # Twice valid (the plan is made), then enough of the same structure that the plan is used
    # and compiled, a few other structures mixed in.
    for n in range(Plans.COMPILE_AFTER + 8):
        resource = copy.deepcopy(base) if n < 2 else \
            _mutant(data, base, same_shape=data.draw(st.integers(0, 4)) > 0)
        before = copy.deepcopy(resource)
        fast = validate(resource, version, model="per-shape")
        assert resource == before, "validation changed the resource"
        assert _schema_part(fast) == validate(resource, version, model="never")


@SETTINGS
@given(data=st.data())
def test_a_plan_passes_exactly_the_valid_resources_of_its_structure(
        data: st.DataObject) -> None:
    version, base = data.draw(st.sampled_from(CORPUS))
    rtype = base["resourceType"]
    keys, leaves = structure(base)
    plan = make_plan(_compiler(version).leaf_checks(rtype, base), leaves, shape(base))
    if plan is None:  # e.g. a contained resource: left to the full check
        return
    extract = compile_extract(base)
    assert extract is not None and extract(base) == leaves
    mutant = _mutant(data, base, same_shape=data.draw(st.booleans()))
    if data.draw(st.booleans()):  # keys in another order: the same structure to the schema
        mutant = _reordered(mutant, data.draw(st.randoms()))
    extracted = extract(mutant)
    if _ordered(mutant, base) == keys:
        assert extracted == structure(_like(mutant, base))[1]
        assert shape(mutant) == plan.shape
        valid = not schema_validator(version, rtype)(mutant)
        assert plan.passes(extracted) is valid
        assert plan.passes(extracted) is valid  # the memos answer the same
    else:
        assert extracted is None


def _reordered(node: Any, rng: Any) -> Any:
    """`node` with the keys of its objects shuffled."""
    if isinstance(node, dict):
        keys = list(node)
        rng.shuffle(keys)
        return {k: _reordered(node[k], rng) for k in keys}
    if isinstance(node, list):
        return [_reordered(item, rng) for item in node]
    return node


def _like(node: Any, model: Any) -> Any:
    """`node` with its keys in the order of `model`'s (where both are objects, same keys)."""
    if type(node) is dict and type(model) is dict and set(node) == set(model):
        return {k: _like(node[k], model[k]) for k in model}
    if type(node) is list and type(model) is list and len(node) == len(model):
        return [_like(a, b) for a, b in zip(node, model, strict=True)]
    return node


def _ordered(node: Any, model: Any) -> tuple:
    return structure(_like(node, model))[0]


def test_structure_tells_apart_what_the_schema_tells_apart() -> None:
    base = {"a": [1, {"b": "x"}], "c": {"d": None}}
    same = {"a": [2, {"b": "y"}], "c": {"d": None}}
    others = [{"a": [1, {"b": "x"}], "c": {"d": 1}}, {"a": [1, {"b": "x"}], "c": {}},
              {"a": [1, {"b": "x"}, 2], "c": {"d": None}},
              {"a": [1, {"b": "x"}], "c": {"e": None}},
              {"a": [[1], {"b": "x"}], "c": {"d": None}},
              {"a": [1.0, {"b": "x"}], "c": {"d": None}},
              {"a": [True, {"b": "x"}], "c": {"d": None}},
              {"a": [1, OrderedDict(b="x")], "c": {"d": None}}]
    assert structure(base)[0] == structure(same)[0]
    assert structure(same)[1] == [2, "y", None]
    extract = compile_extract(base)
    assert extract is not None and extract(same) == [2, "y", None]
    for other in others:
        assert structure(other)[0] != structure(base)[0], other
        assert extract(other) is None, other
    # Another key order is another exact structure, but the same to the schema and `shape`:
    # the leaves come out in the base's order.
    swapped = {"c": {"d": None}, "a": [3, {"b": "z"}]}
    assert structure(swapped)[0] != structure(base)[0]
    assert extract(swapped) == [3, "z", None]
    assert extract(OrderedDict(base)) is None  # not a plain dict: walked, never guessed


def test_extract_handles_awkward_keys_and_nesting() -> None:
    base = {"q\"uote": {"back\\slash": [[], [["x"]], {}]}, "ü": ["", 0], "'": True}
    extract = compile_extract(base)
    assert extract is not None and extract(copy.deepcopy(base)) == structure(base)[1]
    assert extract({**base, "'": 1}) is None  # bool and int are different leaves
    assert compile_extract({1: "not text"}) is None


def test_a_structure_is_planned_when_it_comes_back_and_compiled_when_it_stays() -> None:
    plans = Plans()
    version, resource = next((v, r) for v, r in CORPUS if r["resourceType"] == "AdverseEvent")
    _, key, leaves = plans.find(version, "AdverseEvent", resource)
    made = []

    def plan() -> structures.Plan | None:
        made.append(1)
        return make_plan(_compiler(version).leaf_checks("AdverseEvent", resource), leaves,
                         shape(resource))

    plans.valid(key, plan)
    assert not made  # seen once: no plan yet
    plans.valid(key, plan)
    assert made == [1]
    for _ in range(Plans.COMPILE_AFTER):
        found, _, _ = plans.find(version, "AdverseEvent", resource)
        assert found is not None
    assert found.extract is not None
    found_again, key_again, _ = plans.find(version, "AdverseEvent", resource)
    assert found_again is found and key_again is None  # recognised without a walk


def test_types_whose_structures_never_repeat_skip_the_walk_and_still_validate() -> None:
    version = "R4"
    for n in range(Plans.MISSES + 5):
        resource = {"resourceType": "Basic", "id": f"b{n}",
                    "code": {"coding": [{"code": "x"}] * (n + 1)}}
        assert validate(resource, version, model="per-shape") == []
        bad = {**resource, "id": "not an id!"}
        assert _schema_part(validate(bad, version, model="per-shape")) == \
            validate(bad, version, model="never")


def test_leaf_memos_stay_bounded_and_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(structures, "LEAF_MEMO_LIMIT", 8)
    monkeypatch.setattr(structures, "_MEMOS", {})
    version, resource = next((v, r) for v, r in CORPUS if r["resourceType"] == "AdverseEvent")
    for n in range(40):
        mutant = copy.deepcopy(resource)
        mutant["id"] = f"id-{n}" if n % 5 else f"bad id {n}"
        assert _schema_part(validate(mutant, version, model="per-shape")) == \
            validate(mutant, version, model="never")
    assert structures._MEMOS and all(len(memo) <= 8 for memo in structures._MEMOS.values())


def test_corpus_is_broad() -> None:
    assert len(CORPUS) >= 20
    assert {r["resourceType"] for _, r in CORPUS} >= {
        "AdverseEvent", "Medication", "Patient", "ResearchSubject", "ResearchStudy", "Bundle"}


def test_fixtures_present() -> None:
    if not (FIXTURES / "fhir").is_dir():
        pytest.skip("public fixtures not present")
    assert any(Path(FIXTURES / "fhir" / "examples").rglob("*.json"))


def test_very_large_structures_are_checked_in_full_and_not_kept() -> None:
    resource = {"resourceType": "Basic", "id": "big",
                "code": {"coding": [{"system": "urn:x", "code": f"c{n}"}
                                    for n in range(Plans.LARGEST)]}}
    for bad in (False, False, False, True):
        mutant = copy.deepcopy(resource)
        if bad:
            mutant["code"]["coding"][-1]["code"] = "two  spaces"
        found = validate(mutant, "R4", model="never")
        assert _schema_part(validate(mutant, "R4", model="per-shape")) == found
        assert bool(found) is bad
    assert not validation._PLANS._plans and not validation._PLANS._seen
