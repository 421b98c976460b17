"""Terminology in search and history, through the gateway on both stores and in R4 and R5: the
ValueSets our ConceptMaps imply (read-only at /fhir/ValueSet, `$expand`), the token modifiers
`:in`, `:not-in` and `:of-type`, history `_at` and `_since`, and `_total` (docs/rest.md)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from gateway_fixtures import FHIR, app, client, database_url, patient, post, unique_system

from fhir_adapter import conceptmaps, valuesets
from fhir_adapter.store.canonical import loads
from fhir_adapter.validation import validate

__all__ = ["app", "client", "database_url"]

SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SERIOUS_SET = valuesets.BASE + "sdtm-aeser-seriousness-r4-target"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _prefix(version: str) -> str:
    return "/fhir/R5" if version == "R5" else "/fhir"


def _get(client: Any, url: str, status: int = 200, **headers: str) -> dict[str, Any]:
    r = client.get(url, headers=headers)
    assert r.status_code == status, (url, r.data)
    return loads(r.data)


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])
            if e["resource"]["resourceType"] != "OperationOutcome"}


# ---- the ValueSets ------------------------------------------------------------------------

def test_every_concept_map_implies_valid_source_and_target_value_sets() -> None:
    sets = valuesets.value_sets()
    for vs in sets.values():
        assert validate(vs, "R4") == [] and validate(vs, "R5") == [], vs["url"]
    for map_id, cm in conceptmaps.all_maps().items():
        # a url of ours the map states names its set; somebody else's is not claimed
        named = [cm[f"{side}Uri"] if cm[f"{side}Uri"].startswith(valuesets.BASE)
                 else f"{valuesets.BASE}{map_id}-{side}" for side in ("source", "target")]
        codes = {(s, c) for url in named for s, c, _ in valuesets.expand(url)}
        for group in cm["group"]:
            for element in group["element"]:
                assert (group["source"], element["code"]) in codes
                assert all((group["target"], t["code"]) in codes
                           for t in element.get("target", []) if t.get("code")
                           and t.get("equivalence") not in ("unmatched", "disjoint"))
    assert valuesets.BASE + "enrollment-status" in sets
    assert not [u for u in sets if not u.startswith(valuesets.BASE)]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_value_sets_read_search_and_expand(client, version: str) -> None:
    base = _prefix(version)
    every = _get(client, f"{base}/ValueSet?_count=0")
    assert every["total"] == len(valuesets.value_sets())
    (entry,) = _get(client, f"{base}/ValueSet?url={SERIOUS_SET}")["entry"]
    assert entry["resource"]["id"] == "sdtm-aeser-seriousness-r4-target"
    read = _get(client, f"{base}/ValueSet/sdtm-aeser-seriousness-r4-target")
    assert read["compose"] == valuesets.get(SERIOUS_SET)["compose"]
    for url in (f"{base}/ValueSet/sdtm-aeser-seriousness-r4-target/$expand",
                f"{base}/ValueSet/$expand?url={quote(SERIOUS_SET)}"):
        expanded = _get(client, url)
        assert validate(expanded, version) == []
        assert expanded["expansion"]["total"] == 2
        assert {(c["system"], c["code"]) for c in expanded["expansion"]["contains"]} == {
            (SERIOUSNESS, "serious"), (SERIOUSNESS, "non-serious")}
    posted = client.post(f"{base}/ValueSet/$expand", headers={"Content-Type": FHIR}, json={
        "resourceType": "Parameters", "parameter": [{"name": "url", "valueUri": SERIOUS_SET}]})
    assert posted.status_code == 200 and loads(posted.data)["expansion"]["total"] == 2
    # what cannot be answered as asked is an OperationOutcome, never a wider answer
    for url, status in ((f"{base}/ValueSet/$expand?url=http://example.org/vs", 400),
                        (f"{base}/ValueSet/nope/$expand", 404),
                        (f"{base}/ValueSet/$expand", 400),
                        (f"{base}/ValueSet/$expand?url={SERIOUS_SET}&filter=ser", 400),
                        (f"{base}/ValueSet/$expand?url={SERIOUS_SET}&valueSetVersion=9", 400)):
        assert _get(client, url, status)["resourceType"] == "OperationOutcome", url
    r = client.put(f"{base}/ValueSet/sdtm-aeser-seriousness-r4-target", json=read,
                   headers={"Content-Type": FHIR})
    assert r.status_code == 405


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_capability_statement_lists_value_sets_and_the_modifiers(client, version: str) -> None:
    statement = _get(client, f"{_prefix(version)}/metadata")
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    listed = resources["ValueSet"]
    assert {o["name"] for o in listed["operation"]} == {"expand"}
    assert "url" in {p["name"] for p in listed["searchParam"]}
    params = {p["name"]: p["documentation"] for p in resources["AdverseEvent"]["searchParam"]}
    assert params["seriousness"].endswith(
        "Modifiers: :missing, :in, :not, :not-in, :text.")
    assert ":of-type" in params["identifier"]
    assert ":in" not in params["_id"] and ":of-type" not in params["seriousness"]


# ---- :in and :not-in ----------------------------------------------------------------------

@pytest.fixture
def events(client) -> dict[str, str]:
    """A Patient of its own with four AdverseEvents: serious, non-serious, no seriousness, and
    a seriousness from another code system; their ids by that name."""
    pid = loads(post(client, patient(unique_system())).data)["id"]
    found = {}
    for name, coding in (("serious", {"system": SERIOUSNESS, "code": "serious"}),
                         ("non-serious", {"system": SERIOUSNESS, "code": "non-serious"}),
                         ("none", None),
                         ("other", {"system": "http://example.org/severity", "code": "serious"})):
        ae: dict[str, Any] = {"resourceType": "AdverseEvent", "actuality": "actual",
                              "subject": {"reference": f"Patient/{pid}"}}
        if coding:
            ae["seriousness"] = {"coding": [coding]}
        r = post(client, ae)
        assert r.status_code == 201, r.data
        found[name] = loads(r.data)["id"]
    found["patient"] = pid
    return found


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_in_and_not_in_a_value_set(client, events: dict[str, str], version: str) -> None:
    search = f"{_prefix(version)}/AdverseEvent?subject=Patient/{events['patient']}&seriousness"
    inside = _get(client, f"{search}:in={quote(SERIOUS_SET)}")
    assert _ids(inside) == {events["serious"], events["non-serious"]} and inside["total"] == 2
    # :not-in, as :not: every resource without a code in the set, those without one included
    outside = _get(client, f"{search}:not-in={quote(SERIOUS_SET)}")
    assert _ids(outside) == {events["none"], events["other"]}
    relative = _get(client, f"{search}:in=ValueSet/sdtm-aeser-seriousness-r4-target")
    assert _ids(relative) == _ids(inside)
    either = _get(client, f"{search}:in={quote(SERIOUS_SET)},{valuesets.BASE}ctgov-phase-target")
    assert _ids(either) == _ids(inside)
    none = _get(client, f"{search}:in={valuesets.BASE}ctgov-phase-target")
    assert none["total"] == 0


@pytest.mark.parametrize("modifier", ["in", "not-in"])
def test_an_unknown_value_set_is_400_even_when_lenient(client, events, modifier: str) -> None:
    url = (f"/fhir/AdverseEvent?subject=Patient/{events['patient']}&seriousness:{modifier}="
           "http://hl7.org/fhir/ValueSet/adverse-event-seriousness")
    for headers in ({}, {"Prefer": "handling=lenient"}):
        outcome = _get(client, url, 400, **headers)
        assert "unknown ValueSet" in outcome["issue"][0]["diagnostics"]


# ---- :of-type -----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["R4", "R5"])
def test_of_type_matches_type_coding_and_value(client, version: str) -> None:
    system = unique_system()
    mrn = system.rsplit(":", 1)[1]  # a value no other test has
    typed = patient(system, mrn)
    typed["identifier"][0]["type"] = {"coding": [{"system": V2_0203, "code": "MR"}]}
    mine = loads(post(client, typed).data)["id"]
    post(client, patient(system, mrn))  # the same value without a type
    base = _prefix(version)
    found = _get(client, f"{base}/Patient?identifier:of-type={V2_0203}|MR|{mrn}")
    assert _ids(found) == {mine}
    assert _get(client, f"{base}/Patient?identifier:of-type={V2_0203}|DL|{mrn}")["total"] == 0
    assert _get(client, f"{base}/Patient?identifier:of-type={V2_0203}|MR|x{mrn}")["total"] == 0
    for bad in (f"{V2_0203}|MR", f"|MR|{mrn}", mrn):
        _get(client, f"{base}/Patient?identifier:of-type={bad}", 400)
    _get(client, f"{base}/Patient?gender:of-type={V2_0203}|MR|x", 400)  # not an Identifier


# ---- history _at and _since ---------------------------------------------------------------

def _etags(bundle: dict[str, Any], rid: str) -> list[str]:
    return [e["response"]["etag"] for e in bundle.get("entry", [])
            if e["fullUrl"].endswith(f"/{rid}")]


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_history_at_and_since(client, version: str) -> None:
    system = unique_system()
    v1 = loads(post(client, patient(system)).data)
    rid, t1 = v1["id"], v1["meta"]["lastUpdated"]
    time.sleep(0.01)  # the versions a millisecond apart at least
    r = client.put(f"/fhir/Patient/{rid}", json=patient(system, id=rid, gender="male"),
                   headers={"Content-Type": FHIR})
    t2 = loads(r.data)["meta"]["lastUpdated"]
    base = _prefix(version)
    paths = (f"{base}/Patient/{rid}/_history", f"{base}/Patient/_history", f"{base}/_history")
    for path in paths:
        at1 = _get(client, f"{path}?_at={quote(t1)}&_since={quote(t1)}&_count=50")
        assert _etags(at1, rid) == ['W/"1"'], path
        at2 = _get(client, f"{path}?_at={quote(t2)}&_since={quote(t1)}&_count=50")
        assert _etags(at2, rid) == ['W/"2"'], path
        since = _get(client, f"{path}?_since={quote(t2)}&_count=50")
        assert _etags(since, rid) == ['W/"2"'], path
        assert any("_at=" in ln["url"] for ln in at2["link"])  # paging keeps the filter
    # before it existed: an empty page, not 404; the day of both versions: both
    before = _get(client, f"{paths[0]}?_at=2001-01-01")
    assert before.get("entry", []) == []
    assert _etags(_get(client, f"{paths[0]}?_at={t2[:10]}"), rid) == ['W/"2"', 'W/"1"']
    for bad in ("_at=ge2020-01-01", "_at=yesterday", "_since=yesterday", "_list=x",
                "_type=Patient"):
        _get(client, f"{paths[0]}?{bad}", 400)


# ---- _total -------------------------------------------------------------------------------

def test_total_none_estimate_accurate(client) -> None:
    system = unique_system()
    for i in range(5):
        post(client, patient(system, f"v{i}"))
    search = f"/fhir/Patient?identifier={system}|&_count=2"
    accurate = _get(client, f"{search}&_total=accurate")
    assert accurate["total"] == 5 and _get(client, search)["total"] == 5  # the default
    assert _get(client, f"{search}&_total=estimate")["total"] == 5  # counted, as accurate
    none = _get(client, f"{search}&_total=none")
    assert "total" not in none
    relations = {ln["relation"] for ln in none["link"]}
    assert "next" in relations and "last" not in relations  # paging still works
    assert "total" not in _get(client, f"/fhir/Patient?identifier={system}|&_total=none")
    _get(client, f"{search}&_total=exact", 400)
