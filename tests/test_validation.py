"""Validation: the official examples pass unchanged; the compiled schema check agrees with
the jsonschema library; both layers report FHIRPath-style locations."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapter.validation import (
    fhirpath,
    normalise_version,
    reference_validator,
    schema_validator,
    validate,
)


def _examples(fixtures_dir: Path) -> list[tuple[str, Path]]:
    out = []
    for version in ("r4", "r5"):
        for path in sorted((fixtures_dir / "fhir" / "examples" / version).glob("*.json")):
            out.append((version.upper(), path))
    return out


def test_official_examples_round_trip_unchanged(fixtures_dir: Path) -> None:
    examples = _examples(fixtures_dir)
    assert len(examples) >= 5
    for version, path in examples:
        resource = json.loads(path.read_text())
        before = copy.deepcopy(resource)
        assert validate(resource, version) == [], path.name
        assert resource == before, f"validation changed {path.name}"


def test_r5_example_is_not_valid_r4(fixtures_dir: Path) -> None:
    path = fixtures_dir / "fhir/examples/r5/ResearchSubject-example-crossover-placebo-to-drug.json"
    issues = validate(json.loads(path.read_text()), "R4")
    where = {i.expression for i in issues}
    assert "ResearchSubject.status" in where
    assert any("individual" in i.message for i in issues)


def test_locations_are_fhirpath(fixtures_dir: Path) -> None:
    ae = json.loads((fixtures_dir / "fhir/examples/r4/AdverseEvent-example.json").read_text())
    ae["actuality"] = "bogus"
    ae["suspectEntity"][0]["causality"] = [{"assessment": {"coding": [{"code": 5}]}}]
    found = {(i.expression, i.code) for i in validate(ae, "R4")}
    assert ("AdverseEvent.actuality", "invalid") in found
    assert ("AdverseEvent.suspectEntity[0].causality[0].assessment.coding[0].code",
            "invalid") in found


def test_codes_checked_that_models_let_through() -> None:
    # fhir.resources accepts status="bogus"; the official schema does not (STYLE.md).
    issues = validate({"resourceType": "ResearchStudy", "status": "bogus"}, "R4")
    assert [i.expression for i in issues] == ["ResearchStudy.status"]


def test_not_a_resource() -> None:
    assert validate([], "R4")[0].code == "structure"
    assert validate({"status": "x"}, "R4")[0].expression == "resourceType"
    assert validate({"resourceType": "Nope"}, "R5")[0].code == "not-supported"


@pytest.mark.parametrize("text,expected", [("R4", "R4"), ("r5", "R5"), ("4.0.1", "R4"),
                                           ("5.0", "R5")])
def test_normalise_version(text: str, expected: str) -> None:
    assert normalise_version(text) == expected


def test_normalise_version_rejects_others() -> None:
    with pytest.raises(ValueError, match="unsupported FHIR version"):
        normalise_version("3.0.2")


def test_fhirpath() -> None:
    assert fhirpath("ResearchStudy", ("arm", 0, "name")) == "ResearchStudy.arm[0].name"


# Mutations shaped like real mistakes: wrong types, unknown keys, bad codes, bad dates.
_JUNK = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none(),
                  st.lists(st.integers(), max_size=2), st.just({"x": 1}),
                  st.sampled_from(["2020-13-01", "2020-02-30T25:00", "actual", "resolved", ""]))


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=150, deadline=None, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_schema_agrees_with_jsonschema(fixtures_dir: Path, data: st.DataObject) -> None:
    version, path = data.draw(st.sampled_from(_examples(fixtures_dir)))
    resource = json.loads(path.read_text())
    paths = [p for p in _paths(resource) if p[0] not in ("resourceType",)]
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths))
        node = resource
        try:
            for part in where[:-1]:
                node = node[part]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this branch
        if isinstance(node, dict) and data.draw(st.booleans()):
            node[data.draw(st.sampled_from(["bogus", "status", "_x"]))] = data.draw(_JUNK)
        else:
            try:
                node[where[-1]] = data.draw(_JUNK)
            except (KeyError, IndexError, TypeError):
                continue
    rtype = resource["resourceType"]
    ours = schema_validator(version, rtype)(resource)
    theirs = list(reference_validator(version, rtype).iter_errors(resource))
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])
    # Every location jsonschema blames is one we blame, or contains one (at a oneOf over
    # resource types it blames the whole entry; we dispatch on resourceType and go deeper).
    blamed = [p for p, _ in ours]
    for err in theirs:
        where = tuple(err.absolute_path)
        assert any(p[: len(where)] == where for p in blamed), (where, blamed)


def test_a_bool_where_a_url_goes_is_an_issue_not_a_crash() -> None:
    """fhir_core raises AttributeError for it (found by test_structures' mutations)."""
    study = {"resourceType": "ResearchStudy", "id": "x", "status": "active",
             "relatedArtifact": [{"type": "documentation", "document": {"url": False}}]}
    issues = validate(study, "R5")
    assert any(i.expression == "ResearchStudy.relatedArtifact[0].document.url" for i in issues)
