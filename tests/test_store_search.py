"""Search semantics (R4 search.html) on both backends: every parameter type, modifier and
date/number prefix, OR and AND, sorting, paging, totals, lenient/strict handling, R4 vs R5
parameter names, and the _include/_revinclude helpers."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from typing import Any

import pytest
from store_backends import backend, module_store, postgres_database, store, store_url  # noqa: F401 (fixtures)

from fhir_adapter.errors import BadRequest
from fhir_adapter.store import SqlStore
from fhir_adapter.store.base import SearchQuery

MRN = "urn:test:mrn"
SERIOUS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
STATE = "http://hl7.org/fhir/research-study-status"
LONG = "Hôpital " + "très " * 30 + "Lointain"


def cc(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": code.upper()}]}


def patient(pid: str, family: str, given: str, birth: str, system: str = MRN,
            **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": system,
                                                                  "value": pid[1:]}],
            "name": [{"family": family, "given": [given]}], "birthDate": birth, **extra}


def ae(aid: str, subject: str, date: str, serious: str | None = None,
       severity: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "AdverseEvent", "id": aid, "actuality": "actual",
                           "subject": {"reference": subject}, "date": date}
    if severity == "severe":
        out["event"] = {**cc("http://snomed.info/sct", "271807003"), "text": "Rash on arm"}
    if serious:
        out["seriousness"] = cc(SERIOUS, serious)
    if severity:
        out["severity"] = cc(SEVERITY, severity)
    return out


def study_r5(sid: str, title: str, target: int, actual: int, recruiting_actual: bool
             ) -> dict[str, Any]:
    return {"resourceType": "ResearchStudy", "id": sid, "title": title, "status": "active",
            "progressStatus": [
                {"state": cc(STATE, "recruiting"), "actual": recruiting_actual,
                 "period": {"start": "2020-01-01", "end": "2020-12-31"}},
                {"state": cc(STATE, "completed"), "actual": not recruiting_actual}],
            "recruitment": {"targetNumber": target, "actualNumber": actual}}


def concept_map(cid: str, url: str, context: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "ConceptMap", "id": cid, "url": url, "status": "active",
            "useContext": [{"code": {"system": "http://terminology.hl7.org/CodeSystem/"
                                     "usage-context-type", "code": "age"}, **context}]}


def load(store: SqlStore) -> SqlStore:
    """The search test data: patients, adverse events, studies, concept maps."""
    r4 = [
        patient("p1", "Zola", "Émile", "1840-04-02", gender="male",
                address=[{"city": "Paris"}], telecom=[{"system": "email",
                                                       "value": "emile@example.org"}]),
        patient("p2", "Hugo", "Victor", "1802-02-26", gender="male", active=True),
        patient("p3", "Sand", "George", "1804-07", system="urn:test:other", gender="female"),
        patient("p4", "Zolan", "Jean", "1900", address=[{"city": LONG}]),
        ae("ae1", "Patient/p1", "2020-01-10T10:00:00Z", "Serious", "mild"),
        ae("ae2", "Patient/p2", "2020-02-15", "Non-serious", "severe"),
        ae("ae3", "Patient/p1", "2021-06-01T00:00:00+02:00", "Serious"),
        ae("ae4", "http://hospital.example/fhir/Patient/x9", "2019-05-05"),
        {"resourceType": "ResearchStudy", "id": "open", "status": "active",
         "period": {"start": "2024-03-01"}},
        concept_map("cm1", "http://example.org/fhir/ConceptMap/sev",
                    {"valueQuantity": {"value": 18, "system": "http://unitsofmeasure.org",
                                       "code": "a"}}),
        concept_map("cm2", "http://example.org/fhir/ConceptMap/out",
                    {"valueRange": {"low": {"value": 65}, "high": {"value": 120}}}),
    ]
    for resource in r4:
        store.update({"R4": resource})
    store.update({"R5": study_r5("s1", "Aspirin Trial", 100, 87, True)})
    store.update({"R5": study_r5("s2", "Héparine Study", 10, 12, False)})
    r5_ae = {"resourceType": "AdverseEvent", "id": "ae1", "status": "completed",
             "actuality": "actual", "code": cc("http://snomed.info/sct", "25064002"),
             "subject": {"reference": "Patient/p1"}, "occurrenceDateTime": "2020-01-10"}
    store.update({"R4": r4[4], "R5": r5_ae})
    store.update({"R5": {**r5_ae, "id": "ae5", "subject": {"reference": "ResearchSubject/rs1"}}})
    return store


@pytest.fixture(scope="module")
def data(module_store: SqlStore) -> SqlStore:
    """Loaded once per module and backend; the tests using it only read."""
    return load(module_store)


def ids(store: SqlStore, rtype: str, *params: tuple[str, str], version: str = "R4",
        **options: Any) -> list[str]:
    query = SearchQuery(rtype, version, list(params), count=options.pop("count", 100),
                        **options)  # type: ignore[arg-type]
    return [m.id for m in store.search(query).matches]


def found(store: SqlStore, rtype: str, *params: tuple[str, str], version: str = "R4"
          ) -> set[str]:
    return set(ids(store, rtype, *params, version=version))


# the test clock: one second per write from 2026-01-02T03:04:06Z: p1 :06, p2 :07, p3 :08, p4 :09
@pytest.mark.parametrize("value,expected", [
    ("2026-01-02T03:04:07Z", {"p2"}),  # a second: its every millisecond
    ("2026-01-02T03:04:07.000Z", {"p2"}),
    ("2026-01-02T03:04:07.001Z", set()),
    ("2026-01-02T04:04:07+01:00", {"p2"}),
    ("2026-01-02", {"p1", "p2", "p3", "p4"}),
    ("2026-01-03", set()),
    ("ne2026-01-02T03:04:07Z", {"p1", "p3", "p4"}),
    ("lt2026-01-02T03:04:07Z", {"p1"}),
    ("le2026-01-02T03:04:07Z", {"p1", "p2"}),
    ("gt2026-01-02T03:04:07Z", {"p3", "p4"}),
    ("ge2026-01-02T03:04:07.000Z", {"p2", "p3", "p4"}),
    ("ge2026-01-02T03:04:07.001Z", {"p3", "p4"}),  # p2 is its first millisecond only
    ("sa2026-01-02T03:04:07Z", {"p3", "p4"}),
    ("eb2026-01-02T03:04:07Z", {"p1"}),
    ("ap2026-01-02T03:04:07Z", {"p1", "p2", "p3", "p4"}),  # within 10% of the gap to now
    ("2026-01-02T03:04:06Z,2026-01-02T03:04:09Z", {"p1", "p4"}),
    ("ge0001-01-01", {"p1", "p2", "p3", "p4"}),
    ("lt0001-01-01", set()),
    ("gt9999", set()),
    ("le9999-12-31T23:59:59.999Z", {"p1", "p2", "p3", "p4"}),
])
def test_last_updated_is_searched_as_a_date(data: SqlStore, value: str, expected: set) -> None:
    """`_lastUpdated` has no index rows (indexing.UNINDEXED): resources.last_updated answers
    it with the date semantics of the rows it would have (its millisecond)."""
    assert found(data, "Patient", ("_lastUpdated", value)) == expected


def test_last_updated_missing_and_sort(data: SqlStore) -> None:
    assert found(data, "Patient", ("_lastUpdated:missing", "false")) == {"p1", "p2", "p3", "p4"}
    assert found(data, "Patient", ("_lastUpdated:missing", "true")) == set()
    assert ids(data, "Patient", ("_lastUpdated", "ge2026-01-02T03:04:07Z"),
               sort=["-_lastUpdated"]) == ["p4", "p3", "p2"]
    with pytest.raises(BadRequest):
        found(data, "Patient", ("_lastUpdated", "yesterday"))


@pytest.mark.parametrize("params,expected", [
    ([("seriousness", "Serious")], {"ae1", "ae3"}),
    ([("seriousness", f"{SERIOUS}|Serious")], {"ae1", "ae3"}),
    ([("seriousness", "|Serious")], set()),
    ([("seriousness", f"{SERIOUS}|")], {"ae1", "ae2", "ae3"}),
    ([("seriousness", "serious")], set()),  # codes are case-sensitive
    ([("seriousness:not", "Serious")], {"ae2", "ae4"}),
    ([("seriousness:text", "non")], {"ae2"}),
    ([("event:text", "rash on")], {"ae2"}),  # CodeableConcept.text beside coded displays
    ([("severity:missing", "true")], {"ae3", "ae4"}),
    ([("severity:missing", "false")], {"ae1", "ae2"}),
    ([("severity", "mild,severe")], {"ae1", "ae2"}),
    ([("seriousness", "Serious"), ("severity", "mild")], {"ae1"}),
    ([("_id", "ae1,ae4")], {"ae1", "ae4"}),
])
def test_token(data: SqlStore, params: list, expected: set) -> None:
    assert found(data, "AdverseEvent", *params) == expected


@pytest.mark.parametrize("params,expected", [  # a token with no system, no display
    ([("_id", "ae1")], {"ae1"}),
    ([("_id", "ae1,nope,ae4")], {"ae1", "ae4"}),
    ([("_id", "|ae1")], {"ae1"}),
    ([("_id", "urn:x|ae1")], set()),
    ([("_id", "|")], {"ae1", "ae2", "ae3", "ae4"}),
    ([("_id", "ae1"), ("seriousness", "Serious")], {"ae1"}),
    ([("_id", "ae1"), ("_id", "ae2")], set()),
    ([("_id", "ae5")], set()),  # R5 only
    ([("_id:not", "ae1,ae2")], {"ae3", "ae4"}),
    ([("_id:text", "ae1")], set()),
    ([("_id:missing", "true")], set()),
    ([("_id:missing", "false")], {"ae1", "ae2", "ae3", "ae4"}),
])
def test_id_is_searched_from_the_resources_table(data: SqlStore, params: list,
                                                 expected: set) -> None:
    assert found(data, "AdverseEvent", *params) == expected
    assert found(data, "AdverseEvent", ("_id", "ae5"), version="R5") == {"ae5"}
    with pytest.raises(BadRequest, match="_id:missing takes true or false"):
        found(data, "AdverseEvent", ("_id:missing", "maybe"))


def test_token_identifier_and_email(data: SqlStore) -> None:
    assert found(data, "Patient", ("identifier", f"{MRN}|1")) == {"p1"}
    assert found(data, "Patient", ("identifier", "1")) == {"p1"}
    assert found(data, "Patient", ("identifier", "urn:test:other|3")) == {"p3"}
    assert found(data, "Patient", ("email", "emile@example.org")) == {"p1"}
    assert found(data, "Patient", ("gender", "male"), ("active", "true")) == {"p2"}


@pytest.mark.parametrize("params,expected", [
    ([("family", "zo")], {"p1", "p4"}),
    ([("family", "ZOLA")], {"p1", "p4"}),
    ([("family:exact", "Zola")], {"p1"}),
    ([("family:exact", "zola")], set()),
    ([("family:contains", "OL")], {"p1", "p4"}),
    ([("family:contains", "ug")], {"p2"}),
    ([("given", "emile")], {"p1"}),  # accents folded
    ([("name", "victor")], {"p2"}),  # any part of a HumanName
    ([("address-city", "par")], {"p1"}),
    ([("address-city", LONG[:-3])], {"p4"}),  # longer than the indexed prefix
    ([("address-city", LONG[:-3] + "X")], set()),
    ([("address-city:contains", "lointain")], {"p4"}),  # beyond the indexed prefix
    ([("family", "zo"), ("given", "je")], {"p4"}),
    ([("family", "hugo,sand")], {"p2", "p3"}),
])
def test_string(data: SqlStore, params: list, expected: set) -> None:
    assert found(data, "Patient", *params) == expected


@pytest.mark.parametrize("value,expected", [
    ("2020-02-15", {"ae2"}),
    ("eq2020-01", {"ae1"}),
    ("2020", {"ae1", "ae2"}),
    ("ge2020-02", {"ae2", "ae3"}),
    ("lt2020-02", {"ae1", "ae4"}),
    ("ne2020-02-15", {"ae1", "ae3", "ae4"}),
    ("sa2020-12-31", {"ae3"}),
    ("eb2020-01-11", {"ae1", "ae4"}),
    ("le2020-01-10", {"ae1", "ae4"}),
    ("gt2020-01-10T10:00:00Z", {"ae2", "ae3"}),
    ("2021-05-31", {"ae3"}),  # 2021-06-01T00:00+02:00 is 22:00 UTC the day before
    ("2020-01-10T11:00:00+01:00", {"ae1"}),
    ("ap2020-02-14", {"ae1", "ae2"}),
])
def test_date_prefixes(data: SqlStore, value: str, expected: set) -> None:
    assert found(data, "AdverseEvent", ("date", value)) == expected


def test_date_precision_periods_and_last_updated(data: SqlStore) -> None:
    assert found(data, "Patient", ("birthdate", "1804")) == {"p3"}
    assert found(data, "Patient", ("birthdate", "1804-07-15")) == set()  # month > day
    assert found(data, "Patient", ("birthdate", "ge1804-07-15")) == {"p1", "p3", "p4"}
    assert found(data, "ResearchStudy", ("date", "ge2030-01-01")) == {"open"}  # ongoing
    assert found(data, "ResearchStudy", ("date", "lt2024-03-01")) == set()
    # the test clock: one second per write from 2026-01-02T03:04:06Z (p1 first)
    assert found(data, "Patient", ("_lastUpdated", "le2026-01-02T03:04:07Z")) == {"p1", "p2"}
    assert found(data, "Patient", ("_lastUpdated", "gt2026-01-02T03:04:08Z")) == {"p4"}


@pytest.mark.parametrize("params,expected", [
    ([("subject", "Patient/p1")], {"ae1", "ae3"}),
    ([("subject", "p1")], {"ae1", "ae3"}),
    ([("subject:Patient", "p1")], {"ae1", "ae3"}),
    ([("subject:Group", "p1")], set()),
    ([("subject", "Patient/p1,Patient/p2")], {"ae1", "ae2", "ae3"}),
    ([("subject", "http://hospital.example/fhir/Patient/x9")], {"ae4"}),
    ([("subject", "http://elsewhere.example/fhir/Patient/p1")], set()),
    ([("subject:missing", "false")], {"ae1", "ae2", "ae3", "ae4"}),
])
def test_reference(data: SqlStore, params: list, expected: set) -> None:
    assert found(data, "AdverseEvent", *params) == expected


def test_r5_names_and_representations(data: SqlStore) -> None:
    # R5 `patient` is subject.where(resolve() is Patient): not a ResearchSubject subject
    assert found(data, "AdverseEvent", ("patient", "Patient/p1"), version="R5") == {"ae1"}
    assert found(data, "AdverseEvent", ("subject", "ResearchSubject/rs1"),
                 version="R5") == {"ae5"}
    assert found(data, "AdverseEvent", ("code", "25064002"), version="R5") == {"ae1", "ae5"}
    assert found(data, "AdverseEvent", ("date", "2020-01-10"), version="R5") == {"ae1", "ae5"}
    # R4-only resources do not exist in R5; R4 has `event`, not `code`
    assert found(data, "AdverseEvent", version="R5") == {"ae1", "ae5"}
    with pytest.raises(BadRequest):
        ids(data, "AdverseEvent", ("code", "x"), strict=True)
    assert data.search(SearchQuery("AdverseEvent", "R4", [("code", "x")])).ignored == ("code",)


@pytest.mark.parametrize("params,expected", [
    ([("recruitment-target", "100")], {"s1"}),
    ([("recruitment-target", "1e2")], {"s1"}),
    ([("recruitment-target", "gt50")], {"s1"}),
    ([("recruitment-target", "lt50")], {"s2"}),
    ([("recruitment-target", "ne100")], {"s2"}),
    ([("recruitment-actual", "ge87")], {"s1"}),
    ([("recruitment-actual", "87.0")], {"s1"}),
    ([("recruitment-actual", "87.1")], set()),
    ([("recruitment-actual", "ap90")], {"s1"}),
    ([("recruitment-actual", "le12,ge87")], {"s1", "s2"}),
    ([("progress-status-state-actual", "recruiting$true")], {"s1"}),
    ([("progress-status-state-actual", "recruiting$false")], {"s2"}),
    ([("progress-status-state-actual", f"{STATE}|completed$true")], {"s2"}),
    ([("progress-status-state-period", "recruiting$ge2020-06")], {"s1", "s2"}),
    ([("progress-status-state-period", "completed$ge2020-06")], set()),  # no period
    ([("progress-status-state-actual:missing", "false")], {"s1", "s2"}),
    ([("title", "hep")], {"s2"}),
])
def test_number_and_composite(data: SqlStore, params: list, expected: set) -> None:
    assert found(data, "ResearchStudy", *params, version="R5") == expected


@pytest.mark.parametrize("params,expected", [
    ([("url", "http://example.org/fhir/ConceptMap/sev")], {"cm1"}),
    ([("url:below", "http://example.org/fhir")], {"cm1", "cm2"}),
    ([("url:above", "http://example.org/fhir/ConceptMap/sev/v2")], {"cm1"}),
    ([("context-quantity", "18")], {"cm1"}),
    ([("context-quantity", "18||a")], {"cm1"}),
    ([("context-quantity", "18|http://unitsofmeasure.org|a")], {"cm1"}),
    ([("context-quantity", "18|http://unitsofmeasure.org|mg")], set()),
    ([("context-quantity", "ge60")], {"cm2"}),
    ([("context-quantity", "lt20")], {"cm1"}),
    ([("context-type-quantity", "age$ge60")], {"cm2"}),
])
def test_uri_and_quantity(data: SqlStore, params: list, expected: set) -> None:
    assert found(data, "ConceptMap", *params) == expected


def test_sorting_is_stable(data: SqlStore) -> None:
    assert ids(data, "Patient", sort=["family"]) == ["p2", "p3", "p1", "p4"]
    assert ids(data, "Patient", sort=["-birthdate"]) == ["p4", "p1", "p3", "p2"]
    assert ids(data, "Patient", sort=["-_id"]) == ["p4", "p3", "p2", "p1"]
    assert ids(data, "Patient", sort=["-_lastUpdated"]) == ["p4", "p3", "p2", "p1"]
    assert ids(data, "Patient", sort=["gender", "-family"]) == ["p3", "p1", "p2", "p4"]
    assert ids(data, "AdverseEvent", sort=["severity"]) == ["ae1", "ae2", "ae3", "ae4"]
    # by reference text: relative ones (indexed without a url) as "Type/id", absolute as is
    assert ids(data, "AdverseEvent", sort=["subject"]) == ["ae1", "ae3", "ae2", "ae4"]
    assert ids(data, "AdverseEvent", sort=["-subject"]) == ["ae4", "ae2", "ae1", "ae3"]
    assert ids(data, "Patient", ("family", "zo"), sort=["-date"]) == ["p1", "p4"]  # ignored
    with pytest.raises(BadRequest):
        ids(data, "Patient", sort=["nonsense"], strict=True)


def test_paging_and_totals(data: SqlStore) -> None:
    pages = [ids(data, "AdverseEvent", count=3, offset=o, sort=["-date"]) for o in (0, 3)]
    assert pages == [["ae3", "ae2", "ae1"], ["ae4"]]
    result = data.search(SearchQuery("AdverseEvent", "R4", [("subject", "Patient/p1")],
                                     count=1))
    assert result.total == 2 and len(result.matches) == 1
    assert data.search(SearchQuery("AdverseEvent", "R4", count=0)).total == 4
    none = data.search(SearchQuery("AdverseEvent", "R4", count=2, total="none"))
    assert none.total is None and len(none.matches) == 2
    assert set(none.matches[0].body) == {"R4"}


def test_bad_requests(data: SqlStore) -> None:
    for params in ([("date", "yesterday")], [("family:below", "x")],
                   [("seriousness:exact", "x")], [("recruitment-target", "many")],
                   [("severity:missing", "maybe")]):
        rtype = "ResearchStudy" if params[0][0].startswith("recruit") else (
            "Patient" if params[0][0].startswith("family") else "AdverseEvent")
        version = "R5" if rtype == "ResearchStudy" else "R4"
        with pytest.raises(BadRequest):
            ids(data, rtype, *params, version=version)
    lenient = data.search(SearchQuery("Patient", "R4", [
        ("family", "zola"), ("_count", "1"), ("_include", "x"), ("organization.bogus", "x"),
        ("_has:Group:member:bogus", "g")]))
    assert [m.id for m in lenient.matches] == ["p1", "p4"]
    assert list(lenient.ignored) == ["organization.bogus", "_has:Group:member:bogus"]


def test_updates_and_deletes_reindex(store: SqlStore) -> None:
    data = load(store)
    data.update({"R4": ae("ae2", "Patient/p3", "2020-02-15", "Non-serious", "mild")})
    assert found(data, "AdverseEvent", ("severity", "severe")) == set()
    assert found(data, "AdverseEvent", ("subject", "p3")) == {"ae2"}
    data.delete("AdverseEvent", "ae1")
    assert found(data, "AdverseEvent", ("subject", "p1")) == {"ae3"}
    assert found(data, "AdverseEvent", ("_id", "ae1,ae2")) == {"ae2"}


def test_include_helpers(data: SqlStore) -> None:
    events = data.search(SearchQuery("AdverseEvent", "R4")).matches
    included = data.references_from(events, "R4", "subject")
    assert [(s.resource_type, s.id) for s in included] == [("Patient", "p1"), ("Patient", "p2")]
    assert data.references_from(events, "R4", "subject", target_type="Group") == []
    patients = data.search(SearchQuery("Patient", "R4", [("_id", "p1")])).matches
    assert [s.id for s in data.referencing("AdverseEvent", "R4", "subject", patients)] == [
        "ae1", "ae3"]
    assert [s.id for s in data.referencing("AdverseEvent", "R5", "patient", patients)] == [
        "ae1"]
    with pytest.raises(BadRequest):
        data.referencing("AdverseEvent", "R4", "severity", patients)
