"""The terminology modifiers and history `_at` in the store, on SQLite and PostgreSQL: what
they match, that `db reindex` gives resources written before `:of-type` existed their rows,
and (with 10,000 AdverseEvents ANALYZEd, as tests/test_store_plans.py) that their SQL reads
through the indexes: SQLite's EXPLAIN QUERY PLAN scans no index table, PostgreSQL's EXPLAIN
no Seq Scan of one. Timings are the benchmark harness's business (benchmarks/serving.py)."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert
from store_backends import backend, module_store, postgres_database, store, store_url  # noqa: F401
from test_store_plans import LAST_UPDATED, N, bulk_load, explain

from fhir_adapter.errors import BadRequest
from fhir_adapter.store import SqlStore
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.reading import history_statement, search_statements
from fhir_adapter.store.reindex import reindex
from fhir_adapter.store.schema import index_tables, resource_versions
from fhir_adapter.valuesets import BASE

SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
IN_SET = BASE + "sdtm-aeser-seriousness-r4-target"
LATER = "2026-02-01T00:00:00.000Z"


def adverse_event(i: int) -> dict[str, Any]:
    """Serious one in ten, no seriousness one in seven, an MR-typed identifier one in five."""
    ae: dict[str, Any] = {
        "resourceType": "AdverseEvent", "id": f"ae{i}",
        "meta": {"versionId": "1", "lastUpdated": LAST_UPDATED}, "actuality": "actual",
        "subject": {"reference": f"Patient/p{i % 1000}"},
        "identifier": {"system": "urn:test:ae", "value": f"AE-{i}"}}
    if i % 5 == 0:
        ae["identifier"]["type"] = {"coding": [{"system": V2_0203, "code": "MR"}]}
    if i % 7:
        ae["seriousness"] = {"coding": [{"system": SERIOUSNESS,
                                         "code": "serious" if i % 10 == 0 else "non-serious"}]}
    return ae


@pytest.fixture(scope="module")
def big(module_store: SqlStore) -> SqlStore:
    bulk_load(module_store, adverse_event)
    with module_store.transaction() as tx:  # a second version of every hundredth, later
        conn: Connection = tx._conn  # type: ignore[attr-defined]
        conn.execute(insert(resource_versions), [
            {"res_type": "AdverseEvent", "res_id": f"ae{i}", "version_id": 2,
             "last_updated": LATER, "method": "PUT", "deleted": False}
            for i in range(0, N, 100)])
    module_store.analyze()
    return module_store


def _search(store: SqlStore, *params: tuple[str, str]) -> SearchQuery:
    return SearchQuery("AdverseEvent", "R4", list(params), count=20)


SEARCHES = {
    "in": [("seriousness:in", IN_SET)],
    "not-in": [("seriousness:not-in", IN_SET)],
    "of-type": [("identifier:of-type", f"{V2_0203}|MR|AE-15")],
    "in, with a subject": [("seriousness:in", IN_SET), ("subject", "Patient/p17")],
}
# Expected totals, counted from adverse_event()'s rules.
TOTALS = {"in": sum(1 for i in range(N) if i % 7), "not-in": sum(1 for i in range(N) if not i % 7),
          "of-type": 1, "in, with a subject": sum(1 for i in range(17, N, 1000) if i % 7)}


@pytest.mark.parametrize("name", SEARCHES)
def test_terminology_searches_match_and_use_indexes(big: SqlStore, name: str) -> None:
    query = _search(big, *SEARCHES[name])
    assert big.search(query).total == TOTALS[name]
    for statement in search_statements(query)[:2]:
        plan = explain(big, statement)
        text = "\n".join(plan)
        if big.engine.dialect.name == "sqlite":
            assert not [s for s in plan if s.startswith("SCAN") and "idx_" in s], text
            assert "USING INDEX ix_token_v0" in text or "USING COVERING INDEX ix_token_v0" \
                in text, text
        else:
            # PostgreSQL may walk ix_token_res in id order (a merge join) when most rows
            # match, as for :in here: an index still, never a scan of the table
            assert "Seq Scan on idx_" not in text, text
            assert "Index Scan using ix_token" in text or "Index Only Scan using ix_token" \
                in text or "Bitmap Index Scan on ix_token" in text, text


@pytest.mark.parametrize("at", [
    LAST_UPDATED,  # every AE's first version
    LATER,  # the second versions, and the first of those without one
    "2025-12-31",  # before any
])
def test_history_at_uses_the_version_key(big: SqlStore, at: str) -> None:
    found = big.history("AdverseEvent", "ae100", at=at)
    expected = {LAST_UPDATED: [1], LATER: [2], "2025-12-31": []}[at]
    assert [s.version_id for s in found] == expected
    page = big.history("AdverseEvent", at=at, count=20)  # newest first: the later ones
    assert [s.version_id for s in page] == [] if not expected else expected * 20
    statement = history_statement("AdverseEvent", at=at, count=20)
    text = "\n".join(explain(big, statement))
    if big.engine.dialect.name == "sqlite":
        # the later versions are looked up by their key, never scanned
        assert "SEARCH later USING" in text and "ux_versions" in text, text
    else:
        assert "Seq Scan on resource_versions later" not in text, text


def test_bad_values_are_400(big: SqlStore) -> None:
    for params in ([("seriousness:in", "http://example.org/vs")],
                   [("identifier:of-type", "MR|AE-15")],
                   [("seriousness:of-type", f"{V2_0203}|MR|x")],
                   [("_id:in", IN_SET)]):
        with pytest.raises(BadRequest):
            big.search(_search(big, *params))
    with pytest.raises(BadRequest):
        big.history("AdverseEvent", at="ge2020")


def test_reindex_writes_of_type_rows_for_resources_stored_before(store: SqlStore) -> None:
    typed = {"resourceType": "Patient", "identifier": [{
        "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
        "system": "urn:test:mrn", "value": "M-1"}]}
    store.update({"R4": {**typed, "id": "p1"}, "R5": {**typed, "id": "p1"}})
    query = SearchQuery("Patient", "R4", [("identifier:of-type", f"{V2_0203}|MR|M-1")])
    assert [s.id for s in store.search(query).matches] == ["p1"]
    token = index_tables["token"]
    with store.transaction() as tx:  # as a store written before :of-type had rows
        tx._conn.execute(delete(token).where(  # type: ignore[attr-defined]
            token.c.param == "identifier:of-type"))
    assert store.search(query).matches == []
    assert reindex(store, ["Patient"]) == 1
    assert [s.id for s in store.search(query).matches] == ["p1"]
    r5 = SearchQuery("Patient", "R5", [("identifier:of-type", f"{V2_0203}|MR|M-1")])
    assert [s.id for s in store.search(r5).matches] == ["p1"]
