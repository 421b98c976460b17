"""Validation: the official examples pass unchanged; both layers report FHIRPath-style
locations; bulk validation (per structure) answers as the full check and remembers a bounded
number of structures. jsonschema-rs against jsonschema: test_validation_differential.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fhir_adapter import validation
from fhir_adapter.validation import Shapes, fhirpath, normalise_version, structure, validate


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


def test_a_contained_resource_is_blamed_inside_itself() -> None:
    # the schema's oneOf over resource types: the entry is checked as its own type
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "gender": "x", "bogus": 1}}]}
    found = {(i.expression, i.code) for i in validate(bundle, "R4", model="never")}
    assert found == {("Bundle.entry[0].resource.gender", "invalid"),
                     ("Bundle.entry[0].resource", "invalid")}
    unknown = {**bundle, "entry": [{"resource": {"resourceType": "Nope"}}]}
    assert [i.expression for i in validate(unknown, "R4", model="never")] == [
        "Bundle.entry[0].resource"]


def test_a_value_that_is_not_json_is_an_issue_not_a_crash() -> None:
    issues = validate({"resourceType": "Patient", "name": [{"family": "\ud800"}]}, "R4",
                      model="never")
    assert [(i.code, i.expression) for i in issues] == [("structure", "Patient")]
    assert "not a JSON value" in issues[0].message


def test_structure_keeps_everything_but_leaf_values() -> None:
    a = {"resourceType": "Patient", "name": [{"given": ["A", "B"]}], "active": True}
    assert structure(a) == structure({**a, "active": False, "name": [{"given": ["C", "D"]}]})
    assert structure(a) != structure({**a, "name": [{"given": ["A"]}]})  # array length
    assert structure(a) != structure({**a, "active": "true"})  # leaf type
    assert structure(a) != structure({"name": a["name"], "resourceType": "Patient",
                                      "active": True})  # key order
    assert structure({"a": [{"b": 1}]}) != structure({"a": [], "b": 1})  # nesting


def test_per_shape_checks_the_model_once_per_structure(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    calls = []
    real = validation.model_issues
    monkeypatch.setattr(validation, "model_issues", lambda r, v: calls.append(1) or real(r, v))
    monkeypatch.setattr(validation, "_SHAPES", Shapes())
    one = {"resourceType": "Group", "type": "person", "actual": True, "name": "a"}
    for name in ("a", "b", "c"):
        assert validate({**one, "name": name}, "R4", model="per-shape") == []
    assert len(calls) == 1
    # a structure the model refuses (two value[x]) is checked, and refused, every time
    bad = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
           "valueString": "a", "valueBoolean": True}
    for _ in range(2):
        assert any(i.code == "structure" for i in validate(bad, "R4", model="per-shape"))
    assert len(calls) == 3
    assert validate(bad, "R4", model="never") == []  # the schema alone lets it through


def test_remembered_structures_are_bounded_least_recently_used_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A gateway serving $ingest and writes for months: the set never outgrows its limit.
    shapes = Shapes(limit=8)
    monkeypatch.setattr(validation, "_SHAPES", shapes)
    first = {"resourceType": "Group", "type": "person", "actual": True}
    validate(first, "R4", model="per-shape")
    for n in range(200):  # each with another structure: n extensions
        group = {**first, "extension": [{"url": "http://x", "valueString": "v"}] * (n + 1)}
        assert validate(group, "R4", model="per-shape") == []
        if n % 4 == 0:
            validate(first, "R4", model="per-shape")  # used often: kept
        assert len(shapes) <= 8
    assert ("R4", structure(first)) in shapes
    assert ("R4", structure({**first, "extension": [{"url": "x", "valueString": "v"}]})) \
        not in shapes


def test_decimals_parsed_with_their_text_validate_as_numbers() -> None:
    # The gateway parses bodies with store.canonical.loads: floats that keep their text.
    from fhir_adapter.store.canonical import loads

    for text in ('{"resourceType": "Observation", "status": "final", "code": {"text": "x"},'
                 ' "valueQuantity": {"value": 1.50}}',
                 '{"resourceType": "Patient", "multipleBirthInteger": 2.0}',
                 '{"resourceType": "Patient", "multipleBirthInteger": 2.5}',
                 '{"resourceType": "Patient", "multipleBirthBoolean": 2.5}'):
        for version in ("R4", "R5"):
            assert validate(loads(text), version) == validate(json.loads(text), version)
    assert validate(loads('{"resourceType": "Patient", "multipleBirthBoolean": 1.5}'), "R4")
    # beyond a double's range: still a number (the schemas type every FHIR number "number")
    big = '{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, ' \
          '"valueQuantity": {"value": 1e400}}'
    assert validate(loads(big), "R4", model="never") == []
