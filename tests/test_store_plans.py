"""Query plans: with 10,000 AdverseEvents indexed and ANALYZEd, selective searches read
through the composite indexes (SQLite: SEARCH, never SCAN; PostgreSQL: no Seq Scan)."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, insert
from store_backends import module_store  # noqa: F401 (fixtures)

from fhir_adapter.store import SqlStore, canonical, fastsearch
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.indexing import index_rows
from fhir_adapter.store.reading import search_statements
from fhir_adapter.store.schema import index_tables, resource_bodies, resource_versions, resources

N, PATIENTS = 10_000, 1_000
LAST_UPDATED = "2026-01-01T00:00:00.000Z"


def adverse_event(i: int) -> dict[str, Any]:
    return {"resourceType": "AdverseEvent", "id": f"ae{i}",
            "meta": {"versionId": "1", "lastUpdated": LAST_UPDATED},
            "actuality": "actual",
            "seriousness": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                "code": "Serious" if i % 10 == 0 else "Non-serious"}]},
            "subject": {"reference": f"Patient/p{i % PATIENTS}"},
            "date": f"2020-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "study": [{"reference": f"ResearchStudy/s{i % 5}"}]}


def bulk_load(store: SqlStore, make: Callable[[int], dict[str, Any]] = adverse_event) -> None:
    """10k AdverseEvents (`make(i)`) written with the store's own index rows, in a few bulk
    statements (the per-resource write path would take minutes here; plans depend on the
    rows only)."""
    keys = [{"res_type": "AdverseEvent", "res_id": f"ae{i}", "version_id": 1} for i in range(N)]
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in index_tables}
    bodies = []
    for i, key in enumerate(keys):
        resource = make(i)
        bodies.append({**key, "fhir_version": "R4", "body": canonical.dumps(resource)})
        for table, found in index_rows(resource, "R4").items():
            rows[table].extend(found)
    with store.transaction() as tx:
        conn: Connection = tx._conn  # type: ignore[attr-defined]
        conn.execute(insert(resources), [{**k, "deleted": False, "last_updated": LAST_UPDATED,
                                          "content_hash": "-"} for k in keys])
        conn.execute(insert(resource_versions), [{**k, "last_updated": LAST_UPDATED,
                                                  "method": "PUT", "deleted": False}
                                                 for k in keys])
        conn.execute(insert(resource_bodies), bodies)
        for table, found in rows.items():
            if found:
                conn.execute(insert(index_tables[table]), found)
    store.analyze()


@pytest.fixture(scope="module")
def big(module_store: SqlStore) -> SqlStore:
    bulk_load(module_store)
    return module_store


def explain(store: SqlStore, statement: Any) -> list[str]:
    with store.engine.connect() as conn:
        sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            return [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
        return [row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql)]


@pytest.mark.parametrize("params,total", [
    ([("subject", "Patient/p17")], 10),
    ([("subject", "p17"), ("seriousness", "Serious")], 0),
    ([("_id", "ae1234")], 1),
    ([("_lastUpdated", "gt2026-01-01T00:00:00Z")], 0),  # resources.last_updated's index
    ([("date", "2020-03-03")], 120),
    ([("date", "ge2020-12-28")], 119),
    ([("study", "ResearchStudy/s1"), ("subject", "Patient/p1")], 10),
])
def test_selective_searches_use_indexes(big: SqlStore, params: list, total: int) -> None:
    query = SearchQuery("AdverseEvent", "R4", params, count=20, sort=["-date"])
    assert big.search(query).total == total
    count, page, _ = search_statements(query)
    for statement in (count, page):
        text = assert_indexed(big, statement, total)
        if big.engine.dialect.name != "sqlite":
            continue
        if params[0][0] == "_id":  # resources' own key, no index rows (UNINDEXED)
            assert "USING INDEX sqlite_autoindex_resources_1 (res_type=? AND res_id=?)" \
                in text, text
        else:
            assert "USING INDEX ix_" in text or "USING COVERING INDEX ix_" in text, text


def assert_indexed(store: SqlStore, statement: Any, total: int) -> str:
    """Check `statement`'s plan reads through indexes; the plan's text."""
    plan = explain(store, statement)
    text = "\n".join(plan)
    if store.engine.dialect.name == "sqlite":
        assert not [step for step in plan if step.startswith("SCAN")], text
    else:
        # The index tables are always read through an index; PostgreSQL may still hash
        # join the base tables when it expects many matches (its per-column statistics
        # do not see that `high` of `date` rows differs from `_lastUpdated` rows).
        assert "Seq Scan on idx_" not in text, text
        assert "Index" in text, text
        if total <= 10:
            assert "Seq Scan" not in text, text
    return text


FAST_CASES = [
    [("subject", "Patient/p17")],
    [("subject", "p17")],
    [("subject", "Patient/p17,Patient/p18"), ("actuality", "actual")],
    [("subject", "http://example.org/fhir/Patient/p17")],
    [("subject", "")],
    [("_id", "ae1234,ae17,nothing")],
    [("seriousness", "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness|Serious"),
     ("study", "ResearchStudy/s1")],
    [("seriousness", "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness|")],
    [("seriousness", "|Serious")],
    [("actuality", "actual"), ("_count", "5")],
    [("_profile", "http://example.org/StructureDefinition/none"), ("actuality", "actual")],
]


@pytest.mark.parametrize("params", FAST_CASES)
@pytest.mark.parametrize("count,offset,total", [(20, 0, "accurate"), (7, 3, "none"),
                                                (0, 0, "accurate"), (5, 9990, "accurate"),
                                                (5, 9998, "accurate")])
def test_fast_searches_answer_as_the_general_path(big: SqlStore, params: list, count: int,
                                                  offset: int, total: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    query = SearchQuery("AdverseEvent", "R4", params, count=count, offset=offset,
                        total=total)  # type: ignore[arg-type]
    sql = fastsearch.statements(query, big.engine.dialect.name)
    assert sql is not None
    fast = big.search(query)
    with big.transaction() as tx:  # the same fast path on a unit of work's connection
        assert tx.search(query) == fast
    monkeypatch.setattr(fastsearch, "statements", lambda *_: None)
    general = big.search(query)
    assert fast == general
    if count and offset == 0 and params == FAST_CASES[0]:
        assert [s.id for s in fast.matches] == sorted(f"ae{i}" for i in range(17, N, PATIENTS))


@pytest.mark.parametrize("params", FAST_CASES[:3] + FAST_CASES[5:7])
def test_fast_searches_use_indexes(big: SqlStore, params: list) -> None:
    query = SearchQuery("AdverseEvent", "R4", params, count=20)
    sql = fastsearch.statements(query, big.engine.dialect.name)
    assert sql is not None
    with big.engine.connect() as conn:
        for text, args in ((sql.count, sql.count_params), (sql.page, sql.page_params)):
            if conn.dialect.name == "sqlite":
                plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + text, args)]
                assert not [step for step in plan if step.startswith("SCAN")], plan
            else:
                # As above: the index tables through an index; base tables may hash join.
                plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + text, args)]
                assert not [step for step in plan if "Seq Scan on idx_" in step], plan


@pytest.mark.parametrize("params,sort", [
    ([("subject:Patient", "p17")], []), ([("date", "2020-03-03")], []),
    ([("subject", "Patient/p17")], ["-date"]), ([("nonsense", "1")], []),
    ([("seriousness:not", "Serious")], []),
])
def test_other_searches_take_the_general_path(params: list, sort: list) -> None:
    query = SearchQuery("AdverseEvent", "R4", params, sort=sort)
    assert fastsearch.statements(query, "sqlite") is None
