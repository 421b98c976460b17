"""The pieces under the index: vendored SearchParameters, the FHIRPath subset, value
normalisation (dates, strings, references) and canonical JSON."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import fixture_path
from hypothesis import given
from hypothesis import strategies as st

from fhir_adapter.store import canonical
from fhir_adapter.store.fhirpath import FhirPathError, compile_expression, evaluate
from fhir_adapter.store.searchparams import (
    RESOURCE_TYPES,
    _bundle,
    restrict,
    search_params,
    split_union,
    vendor_bundle,
)
from fhir_adapter.store.values import (
    EPOCH,
    date_range,
    epoch_to_instant,
    normalise,
    reference_target,
    split_reference,
)


@pytest.mark.parametrize("version,folder", [("R4", "r4"), ("R5", "r5")])
def test_vendored_bundle_is_the_official_subset(version: str, folder: str) -> None:
    official = json.loads(gzip.decompress(fixture_path(
        "fhir", "searchparameters", folder, "Bundle-searchParams.json.gz").read_bytes()))
    vendored = _bundle(version)  # type: ignore[arg-type]
    expected = vendor_bundle(official, vendored["meta"]["source"])
    assert vendored == expected
    assert vendored["meta"]["source"].startswith("https://www.npmjs.com/package/hl7.fhir.")


def test_every_served_type_has_its_parameters() -> None:
    counts = {v: sum(len(search_params(v, t)) for t in RESOURCE_TYPES) for v in ("R4", "R5")}
    assert counts["R4"] > 200 and counts["R5"] > 250
    r4, r5 = search_params("R4", "AdverseEvent"), search_params("R5", "AdverseEvent")
    assert {"event", "severity"} <= set(r4) and not {"event", "severity"} & set(r5)
    assert {"code", "patient", "status"} <= set(r5)
    assert search_params("R4", "ResearchSubject")["individual"].expression == \
        "ResearchSubject.individual"
    assert search_params("R5", "Patient")["email"].expression == \
        "Patient.telecom.where(system='email')"
    assert search_params("R4", "Binary") == {}


def test_split_and_restrict() -> None:
    assert split_union("A.b | (C.d as E) | F.g.where(x='|')") == [
        "A.b", "(C.d as E)", "F.g.where(x='|')"]
    expression = "Patient.name | Practitioner.name | Resource.id"
    assert restrict(expression, "Practitioner") == "Practitioner.name | Resource.id"
    assert restrict("Group.member.entity", "Patient") == ""


AE_R5 = {"resourceType": "AdverseEvent", "status": "completed", "actuality": "actual",
         "subject": {"reference": "Patient/1"},
         "occurrencePeriod": {"start": "2020-01-01"},
         "suspectEntity": [{"instanceCodeableConcept": {"text": "aspirin"}},
                           {"instanceReference": {"reference": "Medication/m"}}],
         "extension": [{"url": "http://x/a", "valueString": "A"},
                       {"url": "http://x/b", "valueString": "B"}]}


@pytest.mark.parametrize("expression,values", [
    ("AdverseEvent.subject.where(resolve() is Patient)", [{"reference": "Patient/1"}]),
    ("AdverseEvent.subject.where(resolve() is Group)", []),
    ("AdverseEvent.occurrence.ofType(Period)", [{"start": "2020-01-01"}]),
    ("AdverseEvent.occurrence.ofType(dateTime)", []),
    ("(AdverseEvent.suspectEntity.instance as Reference)", [{"reference": "Medication/m"}]),
    ("AdverseEvent.suspectEntity.instance.as(CodeableConcept).text", ["aspirin"]),
    ("AdverseEvent.status | AdverseEvent.actuality", ["completed", "actual"]),
    ("AdverseEvent.subject.exists() and AdverseEvent.status != 'draft'", [True]),
    ("AdverseEvent.status = 'draft'", [False]),
    ("AdverseEvent.nothing.exists()", [False]),
    ("AdverseEvent.extension('http://x/b').value", ["B"]),
    ("AdverseEvent.suspectEntity.instance.first()", [{"text": "aspirin"}]),
    ("Resource.status", ["completed"]),
    ("Patient.name", []),
])
def test_fhirpath_subset(expression: str, values: list) -> None:
    assert [n.value for n in evaluate(expression, AE_R5, "R5")] == values


def test_fhirpath_types_come_from_the_schema() -> None:
    nodes = evaluate("AdverseEvent.suspectEntity.instance", AE_R5, "R5")
    assert [n.type for n in nodes] == ["CodeableConcept", "Reference"]
    assert [n.type for n in evaluate("AdverseEvent.status", AE_R5, "R5")] == ["code"]


@pytest.mark.parametrize("bad", ["A.b.aggregate($this)", "A.b +", "A.b.where(", "A ~ B"])
def test_fhirpath_outside_the_subset_is_refused(bad: str) -> None:
    with pytest.raises(FhirPathError):
        compile_expression(bad)


@pytest.mark.parametrize("text,low,high", [
    ("2020", "2020-01-01T00:00:00.000Z", "2020-12-31T23:59:59.999Z"),
    ("2020-02", "2020-02-01T00:00:00.000Z", "2020-02-29T23:59:59.999Z"),
    ("2020-12-31", "2020-12-31T00:00:00.000Z", "2020-12-31T23:59:59.999Z"),
    ("2020-01-01T10:00+02:00", "2020-01-01T08:00:00.000Z", "2020-01-01T08:00:59.999Z"),
    ("2020-01-01T10:00:00.5Z", "2020-01-01T10:00:00.500Z", "2020-01-01T10:00:00.599Z"),
])
def test_date_ranges(text: str, low: str, high: str) -> None:
    lo, hi = date_range(text)
    assert (epoch_to_instant(lo), epoch_to_instant(hi)) == (low, high)


@given(st.from_regex(r"[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|1[0-9]|2[0-8])(T([01][0-9]|2[0-3])"
                     r":[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]))?)?)?",
                     fullmatch=True))
def test_date_range_starts_at_the_instant_it_names(text: str) -> None:
    if text.startswith("0000"):
        with pytest.raises(ValueError):
            date_range(text)
        return
    lo, hi = date_range(text)
    assert lo <= hi
    if "T" in text:
        moment = datetime.fromisoformat(text)
        assert lo == (moment - EPOCH) // timedelta(microseconds=1)


@pytest.mark.parametrize("bad", ["", "20", "2020-13", "2020-02-30", "yesterday", "2020-1-1",
                                 "202\u0661", "2020-0\u0661"])
def test_bad_dates(bad: str) -> None:
    with pytest.raises(ValueError):
        date_range(bad)


def test_strings_and_references() -> None:
    assert normalise("  Émile\tZOLA ") == "emile zola"
    assert normalise("Straße") == "strasse"
    assert reference_target({"reference": "http://h/fhir/Patient/9/_history/2"}) == (
        "Patient", "9")
    assert reference_target({"reference": "#contained"}) is None
    assert reference_target({"reference": "abc", "type": "Group"}) == ("Group", "abc")
    assert reference_target({"identifier": {"value": "x"}, "type": "Patient"}) == (
        "Patient", None)
    assert split_reference("Patient/1") == ("Patient", "1")
    assert split_reference("1") == (None, "1")
    assert split_reference("urn:uuid:1") == (None, None)


def test_canonical_json_keeps_what_was_written() -> None:
    text = b'{"b":1.50,"a":[1e3,-0.0,12345678901234567890],"s":"2020-01-01T00:00:00Z"}'
    assert canonical.dumps(canonical.loads(text)) == text
    for bad in (b'{"a": NaN}', b'{"a": Infinity}'):
        with pytest.raises(ValueError):
            canonical.loads(bad)
    resource = {"resourceType": "Patient", "active": True, "id": "x",
                "meta": {"tag": [{"code": "t"}], "versionId": "9"}}
    assert list(canonical.with_meta(resource, "x", 2, "T")) == [
        "resourceType", "id", "meta", "active"]
    assert canonical.with_meta(resource, "x", 2, "T")["meta"] == {
        "versionId": "2", "lastUpdated": "T", "tag": [{"code": "t"}]}
    assert canonical.without_version_meta({"meta": {"versionId": "1"}}) == {}
    assert datetime.now(UTC) > EPOCH
