"""The loader's write path: Store.bulk_upsert gives what one update() per resource gives
(versions, history, index, unchanged content), mapping in child processes gives what mapping
inline gives, and the compact key set behind the adverse-event duplicate check."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from store_backends import backend, postgres_database, store, store_url  # noqa: F401 (fixtures)

from fhir_adapter.errors import InputError, InvalidResource, NotFound
from fhir_adapter.keyset import KeySet
from fhir_adapter.pipeline import load as loader
from fhir_adapter.pipeline.bundles import load_bundles
from fhir_adapter.pipeline.load import load_files
from fhir_adapter.store import SqlStore, canonical
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.validation import checked


def patient(pid: str, gender: str) -> dict[str, dict[str, Any]]:
    return {v: {"resourceType": "Patient", "id": pid, "gender": gender,
                "identifier": [{"system": "urn:s", "value": pid}]} for v in ("R4", "R5")}


def test_bulk_upsert_matches_single_updates(store: SqlStore) -> None:
    store.update(patient("p1", "male"))
    store.update(patient("p2", "male"))
    store.delete("Patient", "p2")
    stream = [patient("p1", "male"), patient("p2", "female"), patient("p3", "other"),
              patient("p3", "female")]  # a repeated id: the second write sees the first
    with store.transaction() as tx:
        outcomes = list(tx.bulk_upsert(stream))
    assert outcomes == [("Patient", "unchanged"), ("Patient", "created"),
                        ("Patient", "created"), ("Patient", "updated")]
    assert store.read("Patient", "p1").version_id == 1
    assert store.read("Patient", "p2").version_id == 3  # revived after its tombstone
    third = store.read("Patient", "p3")
    assert third.version_id == 2 and b'"versionId":"2"' in third.json("R5")
    assert [h.version_id for h in store.history("Patient", "p3")] == [2, 1]
    for version in ("R4", "R5"):
        found = store.search(SearchQuery("Patient", version, [("gender", "female")]))
        assert sorted(m.id for m in found.matches) == ["p2", "p3"]
        old = store.search(SearchQuery("Patient", version, [("gender", "other")]))
        assert old.total == 0  # the index of the replaced version is gone
        assert store.search(SearchQuery("Patient", version,
                                        [("identifier", "urn:s|p3")])).total == 1


def test_bulk_bodies_are_the_single_write_bytes(store: SqlStore) -> None:
    tagged = {"resourceType": "Patient", "id": "t1", "active": True,
              "meta": {"tag": [{"system": "urn:t", "code": "x"}], "versionId": "9"}}
    plain = patient("t2", "male")
    with store.transaction() as tx:
        list(tx.bulk_upsert([{"R4": tagged}, plain]))
    for rid, reps in (("t1", {"R4": tagged}), ("t2", plain)):
        stored = store.read("Patient", rid)
        for version, rep in reps.items():
            body = canonical.without_version_meta(rep)
            expected = canonical.with_meta(body, rid, 1, stored.last_updated)
            assert stored.json(version) == canonical.dumps(expected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3), max_leaves=8)


@given(rtype=st.text(min_size=1, max_size=8), rid=st.text(min_size=1, max_size=8),
       rest=st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_meta_spliced_into_bytes_equals_reserialising(rtype: str, rid: str,
                                                      rest: dict[str, Any]) -> None:
    # A meta that is not an object never reaches the store (validation refuses it first).
    resource = {"resourceType": rtype, "id": rid,
                **{k: v for k, v in rest.items() if k not in ("resourceType", "id")
                   and (k != "meta" or isinstance(v, dict))}}
    plain = canonical.dumps(resource)
    assert (canonical.with_meta_bytes(plain, resource, 4, "2026-11-25T00:00:00Z")
            == canonical.dumps(canonical.with_meta(resource, rid, 4, "2026-11-25T00:00:00Z")))


def test_bulk_upsert_of_checked_resources_rolls_back(store: SqlStore) -> None:
    bad = patient("p9", "robot")
    with pytest.raises(InvalidResource), store.transaction() as tx:
        for _ in tx.bulk_upsert(checked([patient("p8", "male"), bad])):
            pass
    with pytest.raises(NotFound):
        store.read("Patient", "p8")


def rows_file(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def producer(paths: list[Path], version: str, report: Any = None, **options: Any) -> Any:
    """A stand-in mapping: one Patient per row, a warning per file, a failing row raises."""
    for path in paths:
        if report:
            report.warn(f"{path.name}: a warning")
        for number, row in enumerate(json.loads(path.read_text("utf-8")), start=1):
            if row.get("fail"):
                raise InputError(str(path), "bad row", row=number, field_name="gender")
            yield patient(f"q{row['id']}", row["gender"])[version]


def test_parallel_mapping_matches_inline(store: SqlStore, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_adapter import parallel

    if not parallel.available():
        pytest.skip("no fork on this platform")
    monkeypatch.setattr(loader, "producer", lambda kind: producer)
    monkeypatch.setattr(parallel, "BATCH", 3)  # several messages per child
    source = rows_file(tmp_path, [{"id": n, "gender": "male"} for n in range(10)])
    said: list[str] = []
    first = load_files("enrollments", [source], store=store, parallel=True, warn=said.append)
    assert str(first) == "10 created, 0 updated, 0 unchanged"
    assert said == ["rows.json: a warning"]  # R4's warnings only, passed on by the parent
    again = load_files("enrollments", [source], store=store, parallel=False)
    assert str(again) == "0 created, 0 updated, 10 unchanged"
    bad = rows_file(tmp_path, [{"id": 20, "gender": "male"}, {"fail": True}])
    with pytest.raises(InputError) as caught:
        load_files("enrollments", [bad], store=store, parallel=True)
    assert (caught.value.row, caught.value.field_name) == (2, "gender")
    with pytest.raises(NotFound):
        store.read("Patient", "q20")


def test_mapping_processes_start_before_the_store_opens(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The children are forked before the parent opens the store (and imports SQLAlchemy):
    they map while it does. What they run must not import SQLAlchemy either."""
    from fhir_adapter import parallel

    if not parallel.available():
        pytest.skip("no fork on this platform")
    code = ("import sys, fhir_adapter.store.bulk, fhir_adapter.pipeline.adverse_events, "
            "fhir_adapter.pipeline.enrollments, fhir_adapter.pipeline.study, "
            "fhir_adapter.pipeline.load; print(sorted(m for m in sys.modules if m.startswith("
            "'sqlalchemy'))[:3])")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert found.stdout.strip() == "[]"
    started: list[str] = []
    real = parallel.ChildStream.__init__

    def start(self: Any, *args: Any) -> None:
        started.append("child")
        real(self, *args)

    opened = loader._open

    def open_after(database: str | None) -> Any:
        started.append("store")
        return opened(database)

    monkeypatch.setattr(parallel.ChildStream, "__init__", start)
    monkeypatch.setattr(loader, "_open", open_after)
    monkeypatch.setattr(loader, "producer", lambda kind: producer)
    source = rows_file(tmp_path, [{"id": n, "gender": "male"} for n in range(5)])
    database = str(tmp_path / "new.db")
    done = load_files("enrollments", [source], database=database, parallel=True)
    assert str(done) == "5 created, 0 updated, 0 unchanged"
    assert started == ["child", "child", "store"]


def test_a_child_stream_closed_unread_stops_its_process() -> None:
    from fhir_adapter import parallel

    if not parallel.available():
        pytest.skip("no fork on this platform")
    stream = parallel.in_child(endless)
    child = stream._child
    assert child.is_alive()
    stream.close()
    assert not child.is_alive()
    stream.close()  # twice is harmless


def endless(warn: Any = None) -> Any:
    n = 0
    while True:
        n += 1
        yield n


def test_keyset_is_a_set_with_first_values() -> None:
    keys = KeySet(capacity=4)
    assert keys.add("a", 7) and keys.add("b", 8) and not keys.add("a", 9)
    for n in range(1000):  # grows past its first capacity several times
        keys.add(f"k{n}", n)
    assert len(keys) == 1002
    assert keys.get("a") == 7 and keys.get("k999") == 999 and keys.get("zz") is None
    assert "b" in keys and "c" not in keys and 3 not in keys


def test_postgres_foreign_keys_are_checked_at_commit() -> None:
    """Checked per row, a fresh PostgreSQL database planned the key check on the wrong index
    and a bulk load went quadratic; databases made before that change are altered on open."""
    from sqlalchemy import text
    from store_backends import new_postgres_database

    from fhir_adapter.store import open_store

    def deferred(opened: SqlStore) -> set[tuple[str, bool]]:
        with opened.engine.connect() as conn:
            rows = conn.execute(text("SELECT conname, condeferred FROM pg_constraint "
                                     "WHERE contype = 'f'")).fetchall()
        return {(name, flag) for name, flag in rows}

    with new_postgres_database() as url:
        first = open_store(url)
        keys = deferred(first)
        assert len(keys) == 2 and all(flag for _, flag in keys)
        with first.engine.begin() as conn:  # as an older version of the store made them
            for name, _ in keys:
                table = "resource_bodies" if "bodies" in name else "resource_versions"
                conn.execute(text(f'ALTER TABLE {table} ALTER CONSTRAINT "{name}" '
                                  "NOT DEFERRABLE"))
        assert not any(flag for _, flag in deferred(first))
        first.close()
        again = open_store(url)
        assert all(flag for _, flag in deferred(again))
        with again.transaction() as tx:
            assert list(tx.bulk_upsert([patient("k1", "male")])) == [("Patient", "created")]
        again.close()


# -- SQLite: search indexes built after a load into empty index tables -------------------

def _indexes(store: SqlStore) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return sorted(conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name LIKE 'idx_%'").fetchall())


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    from fhir_adapter.store import open_store

    opened = open_store(str(tmp_path / "deferred.db"))
    yield opened
    opened.close()


def test_a_load_into_empty_tables_ends_with_every_index(sqlite_store: SqlStore) -> None:
    schema = _indexes(sqlite_store)
    assert len(schema) == 16
    stream = [patient("d1", "male"), patient("d2", "female"),
              patient("d1", "other")]  # d1 again: its rows are deleted by resource mid-load
    with sqlite_store.transaction() as tx:
        assert [o for _, o in tx.bulk_upsert(stream)] == ["created", "created", "updated"]
    assert _indexes(sqlite_store) == schema
    for version in ("R4", "R5"):
        found = sqlite_store.search(SearchQuery("Patient", version, [("gender", "other")]))
        assert [m.id for m in found.matches] == ["d1"]
        assert sqlite_store.search(SearchQuery("Patient", version,
                                               [("gender", "male")])).total == 0
    with sqlite_store.engine.connect() as conn:
        def plan(table: str, condition: str) -> str:
            return str(conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT res_id FROM idx_{table} WHERE fhir_version = 'R4' "
                f"AND res_type = 'Patient' AND param = 'p' AND {condition}").fetchall())

        assert "ix_token_v0" in plan("token", "code = 'other'")
        assert "ix_token_v1" in plan("token", "system IS NULL")  # v0 leaves out no code
        assert "ix_reference_v1" in plan("reference", "url = 'http://x/Patient/1'")


@pytest.mark.parametrize("large", [True, False])
def test_deferred_indexes_of_large_tables_are_sorted_by_two_threads_in_small_runs(
        sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch, large: bool) -> None:
    from fhir_adapter.store import bulk

    monkeypatch.setattr(bulk, "SORT_ROWS", 0 if large else 1)  # the empty tables: 0 rows
    schema = _indexes(sqlite_store)
    statements: list[str] = []
    with sqlite_store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        cur.execute("PRAGMA cache_size=-1234")
        cur.execute("BEGIN IMMEDIATE")
        deferred = bulk.DeferredIndexes(cur)
        raw.set_trace_callback(statements.append)
        deferred.finish(cur)
        raw.set_trace_callback(None)
        assert cur.execute("PRAGMA threads").fetchone()[0] == 0
        assert cur.execute("PRAGMA cache_size").fetchone()[0] == -1234
        cur.execute("COMMIT")
        cur.execute("PRAGMA cache_size=-2000")
    builds = [n for n, s in enumerate(statements) if s.startswith("CREATE INDEX")]
    assert len(builds) == 16
    if large:
        assert statements.index(f"PRAGMA cache_size={bulk.SORT_CACHE}") < builds[0]
        assert statements.index(f"PRAGMA threads={bulk.SORT_THREADS}") < builds[0]
        assert statements.index("PRAGMA threads=0") > builds[-1]
    else:  # small tables sort in one run in the load's cache
        assert f"PRAGMA cache_size={bulk.SORT_CACHE}" not in statements
        assert f"PRAGMA threads={bulk.SORT_THREADS}" not in statements
    assert _indexes(sqlite_store) == schema  # dropped, then built again
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_a_failed_or_abandoned_load_keeps_the_indexes(sqlite_store: SqlStore) -> None:
    schema = _indexes(sqlite_store)
    with pytest.raises(InvalidResource), sqlite_store.transaction() as tx:
        for _ in tx.bulk_upsert(checked([patient("f1", "male"), patient("f2", "robot")])):
            pass
    assert _indexes(sqlite_store) == schema
    with sqlite_store.transaction() as tx:  # the consumer stops after the first batch
        written = tx.bulk_upsert([patient(f"a{n}", "male") for n in range(3)])
        next(written)
        written.close()
    assert _indexes(sqlite_store) == schema
    assert sqlite_store.search(SearchQuery("Patient", "R4", [("gender", "male")])).total == 3


# -- planner statistics after loads ------------------------------------------------------

def _statistics(store: SqlStore) -> list[tuple]:
    with store.engine.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master "
                                    "WHERE name = 'sqlite_stat1'").first():
            return []
        return sorted(conn.exec_driver_sql("SELECT * FROM sqlite_stat1").fetchall())


def test_a_small_load_keeps_the_statistics_a_large_one_renews(sqlite_store: SqlStore) -> None:
    def load(ids: range, gender: str = "male") -> None:
        with sqlite_store.transaction() as tx:
            for _ in tx.bulk_upsert([patient(f"s{n}", gender) for n in ids]):
                pass

    load(range(30))
    sqlite_store.analyze(0)  # wrote nothing: nothing to learn
    assert _statistics(sqlite_store) == []
    sqlite_store.analyze(1)  # no statistics yet: any load makes them
    first = _statistics(sqlite_store)
    assert ("resources", "sqlite_autoindex_resources_1", "30 30 1") in first
    load(range(30, 32))
    sqlite_store.analyze(2)  # 2 of 32: the shape is the same, ANALYZE would read it all
    assert _statistics(sqlite_store) == first
    load(range(32, 40))
    sqlite_store.analyze(8)  # a quarter of the store: renewed
    assert ("resources", "sqlite_autoindex_resources_1", "40 40 1") in _statistics(sqlite_store)
    sqlite_store.analyze()  # unknown: always
    assert _statistics(sqlite_store)


def test_load_files_counts_what_it_wrote_for_the_statistics(
        sqlite_store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int | None] = []
    monkeypatch.setattr(sqlite_store, "analyze", seen.append)
    source = tmp_path / "patients.ndjson"
    source.write_text("".join(json.dumps(patient(f"n{n}", "male")["R4"]) + "\n"
                              for n in range(3)))
    load_bundles([source], "R4", store=sqlite_store)
    load_bundles([source], "R4", store=sqlite_store)  # unchanged the second time
    assert seen == [3, 0]


# -- the journal of a load into an empty SQLite store ------------------------------------

def _pragma(tx: SqlStore, name: str) -> Any:
    assert tx._conn is not None  # the transaction's own connection
    return tx._conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_a_load_into_an_empty_store_writes_through_a_rollback_journal(
        sqlite_store: SqlStore, tmp_path: Path) -> None:
    from fhir_adapter.store import open_store

    path = tmp_path / "deferred.db"
    with sqlite_store.transaction(bulk=True) as tx:
        assert _pragma(tx, "journal_mode") == "delete"
        assert _pragma(tx, "synchronous") == 2  # FULL: NORMAL is safe in WAL mode only
        assert _pragma(tx, "foreign_keys") == 0  # the writer keeps them (checked below)
        assert [o for _, o in tx.bulk_upsert([patient("j1", "male"), patient("j2", "male")])
                ] == ["created", "created"]
        reader = open_store(str(path))  # connects meanwhile: cannot switch the file to WAL
        assert reader.search(SearchQuery("Patient", "R4", [("gender", "male")])).total == 0
    try:
        assert reader.search(SearchQuery("Patient", "R4", [("gender", "male")])).total == 2
    finally:
        reader.close()
    assert not (tmp_path / "deferred.db-journal").exists()
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 8192
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
        assert conn.exec_driver_sql("SELECT count(*) FROM resource_bodies").scalar() == 4
    with sqlite_store.transaction(bulk=True) as tx:  # no longer empty: the WAL as always
        assert _pragma(tx, "journal_mode") == "wal"
        assert _pragma(tx, "foreign_keys") == 1
        list(tx.bulk_upsert([patient("j3", "female")]))
    assert sqlite_store.search(SearchQuery("Patient", "R5", [("gender", "male")])).total == 2


def test_a_shared_empty_store_keeps_the_wal(sqlite_store: SqlStore, tmp_path: Path) -> None:
    from fhir_adapter.store import open_store

    gateway = open_store(str(tmp_path / "deferred.db"))
    try:
        assert gateway.search(SearchQuery("Patient", "R4", [])).total == 0  # keeps it open
        with sqlite_store.transaction(bulk=True) as tx:
            assert _pragma(tx, "journal_mode") == "wal"
            assert _pragma(tx, "foreign_keys") == 0  # empty: as in the journal's case
            list(tx.bulk_upsert([patient("w1", "male")]))
            assert gateway.search(SearchQuery("Patient", "R4", [])).total == 0
        assert gateway.search(SearchQuery("Patient", "R4", [])).total == 1
    finally:
        gateway.close()


def test_a_failed_load_into_an_empty_store_leaves_it_empty(sqlite_store: SqlStore,
                                                           tmp_path: Path) -> None:
    stream = [patient(f"r{n}", "male") for n in range(1200)] + [patient("bad", "robot")]
    with pytest.raises(InvalidResource), sqlite_store.transaction(bulk=True) as tx:
        assert _pragma(tx, "journal_mode") == "delete"
        for _ in tx.bulk_upsert(checked(stream)):
            pass
    assert sqlite_store.search(SearchQuery("Patient", "R4", [])).total == 0
    assert not (tmp_path / "deferred.db-journal").exists()
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql("SELECT count(*) FROM resource_bodies").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_bulk_transaction_is_all_or_nothing(store: SqlStore) -> None:
    with pytest.raises(InvalidResource), store.transaction(bulk=True) as tx:
        for _ in tx.bulk_upsert(checked([patient("b1", "male"), patient("b2", "robot")])):
            pass
    assert store.search(SearchQuery("Patient", "R4", [])).total == 0
    with store.transaction(bulk=True) as tx:
        list(tx.bulk_upsert([patient("b1", "male")]))
    assert store.read("Patient", "b1").version_id == 1


# A child that opens the store of argv[1] and bulk-loads 3,000 Patients into it, then (the
# scripts below) is killed before the commit.
_LOADER = """
import os, sys
from fhir_adapter.store import bulk, open_store
bulk.SQLITE_CACHE = -64  # 64 KiB: pages spill into the file long before the commit
store = open_store(sys.argv[1])
def patients():
    for n in range(3000):
        yield {v: {"resourceType": "Patient", "id": f"k{n}", "gender": "male"}
               for v in ("R4", "R5")}
"""

_KILLED_LOAD = _LOADER + """
with store.transaction(bulk=True) as tx:
    assert tx._conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    for _ in tx.bulk_upsert(patients()):
        pass
    os._exit(9)  # killed before the commit
"""


def test_a_load_killed_in_rollback_mode_leaves_the_store_empty(tmp_path: Path) -> None:
    from fhir_adapter.store import open_store

    path = tmp_path / "killed.db"
    open_store(str(path)).close()
    done = subprocess.run([sys.executable, "-c", _KILLED_LOAD, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    assert (tmp_path / "killed.db-journal").exists()  # hot: the next reader rolls it back
    reopened = open_store(str(path))
    try:
        assert reopened.search(SearchQuery("Patient", "R4", [])).total == 0
        with reopened.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM idx_token").scalar() == 0
        with reopened.transaction(bulk=True) as tx:  # and loads as new
            list(tx.bulk_upsert([patient("k1", "female")]))
        assert reopened.search(SearchQuery("Patient", "R5", [])).total == 1
    finally:
        reopened.close()
    assert not (tmp_path / "killed.db-journal").exists()


def test_postgres_batches_are_planned_each_time() -> None:
    """The batch SELECT is never a server-side prepared statement: its generic plan, made
    while a new table is small, scanned the whole table for every later batch."""
    from store_backends import new_postgres_database

    from fhir_adapter.store import open_store

    with new_postgres_database() as url:
        _load_and_list_prepared(open_store(url))


def _load_and_list_prepared(opened: SqlStore) -> None:
    try:
        with opened.transaction(bulk=True) as tx:
            written = list(tx.bulk_upsert([patient(f"g{n}", "male") for n in range(3000)]))
            assert tx._conn is not None
            prepared = tx._conn.exec_driver_sql(
                "SELECT statement FROM pg_prepared_statements").scalars().all()
        assert len(written) == 3000  # 6 batches: psycopg prepares on a statement's 5th run
        assert not [s for s in prepared if "res_id = ANY" in s], prepared
    finally:
        opened.close()


@pytest.mark.parametrize("count", [0, 1, 19, 20, 21, 45, 60])
def test_sqlite_inserts_rows_in_statements_of_several(tmp_path: Path, count: int) -> None:
    """bulk._insert writes SQLITE_ROWS rows a statement and the rest one by one: every row,
    in order, whatever the count; a row of the wrong width is still refused by sqlite3."""
    import sqlite3

    from fhir_adapter.store import bulk

    conn = sqlite3.connect(tmp_path / "t.db")
    columns = bulk.COLUMNS["idx_token"]
    conn.execute(f"CREATE TABLE idx_token ({', '.join(columns)})")
    rows = [("AdverseEvent", f"id{n:03d}", "R4", "code", 0, "sys", f"c{n}", None)
            for n in range(count)]
    bulk._insert(conn.cursor(), "sqlite", "idx_token", rows)
    assert conn.execute(f"SELECT {', '.join(columns)} FROM idx_token ORDER BY rowid"
                        ).fetchall() == rows
    with pytest.raises(sqlite3.ProgrammingError):
        bulk._insert(conn.cursor(), "sqlite", "idx_token", [*rows, rows[0][:7]] if rows
                     else [("x",) * 7] * bulk.SQLITE_ROWS)
    # one row too long and one too short: the statement's value count would match
    mixed = [("y",) * 9, ("y",) * 7, *[("y",) * 8] * (bulk.SQLITE_ROWS - 2)]
    with pytest.raises(sqlite3.ProgrammingError):
        bulk._insert(conn.cursor(), "sqlite", "idx_token", mixed)


# -- PostgreSQL: search indexes built after a load into an empty store -------------------

def _pg_indexes(opened: SqlStore) -> list[tuple[str, str]]:
    with opened.engine.connect() as conn:
        return sorted(conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename LIKE 'idx_%%'").fetchall())


def test_postgres_load_into_an_empty_store_builds_its_indexes_at_the_end() -> None:
    """The index tables' b-trees are dropped in the load's transaction and built by its end:
    mid-load they are gone, afterwards every one is back as the schema makes it, and the
    searches use them. A load into a store that holds resources keeps them throughout."""
    from store_backends import new_postgres_database

    from fhir_adapter.store import open_store

    with new_postgres_database() as url:
        opened = open_store(url)
        try:
            schema = _pg_indexes(opened)
            assert len(schema) == 16
            seen: list[int] = []

            def stream() -> Any:
                yield patient("q1", "male")
                yield patient("q2", "female")
                seen.append(len(_index_names(tx)))  # mid-load, on the load's connection
                yield patient("q1", "other")  # updated in the same load: by-resource built
                for n in range(1200):  # more than one batch
                    yield patient(f"r{n}", "male")

            with opened.transaction(bulk=True) as tx:
                outcomes = [o for _, o in tx.bulk_upsert(stream())]
            assert outcomes[:3] == ["created", "created", "updated"] and len(outcomes) == 1203
            assert seen == [0]  # the first batch was written with every index dropped
            assert _pg_indexes(opened) == schema
            found = opened.search(SearchQuery("Patient", "R5", [("gender", "other")]))
            assert [m.id for m in found.matches] == ["q1"]
            assert opened.search(SearchQuery("Patient", "R4", [("gender", "male")])).total == 1200
            with opened.transaction(bulk=True) as tx:  # the store holds resources now
                assert list(tx.bulk_upsert([patient("q3", "male")])) == [("Patient", "created")]
                assert len(_index_names(tx)) == 16
        finally:
            opened.close()


def _index_names(tx: SqlStore) -> list[str]:
    assert tx._conn is not None
    return list(tx._conn.exec_driver_sql(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename LIKE 'idx_%%'").scalars())


_KILLED_PG_LOAD = _LOADER + """
with store.transaction(bulk=True) as tx:
    for _ in tx.bulk_upsert(patients()):
        pass
    os._exit(9)  # killed before the commit, its indexes dropped
"""


def test_a_killed_postgres_load_leaves_the_store_as_it_was() -> None:
    from store_backends import new_postgres_database

    from fhir_adapter.store import open_store

    with new_postgres_database() as url:
        opened = open_store(url)
        schema = _pg_indexes(opened)
        opened.close()
        done = subprocess.run([sys.executable, "-c", _KILLED_PG_LOAD, url],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 9, done.stderr
        reopened = open_store(url)
        try:
            assert reopened.search(SearchQuery("Patient", "R4", [])).total == 0
            assert _pg_indexes(reopened) == schema  # the drop rolled back with the rows
            with reopened.transaction(bulk=True) as tx:
                list(tx.bulk_upsert([patient("k1", "female")]))
            assert reopened.search(SearchQuery("Patient", "R5", [("gender", "female")])
                                   ).total == 1
        finally:
            reopened.close()


# -- adverse events: the R4 process parses the file once and passes the records to R5 ----

def _ae_rows(tmp_path: Path, *, bad_row: bool = False) -> Path:
    """The pilot slice's AE rows repeated under new subjects (several relay batches), and a
    row without USUBJID when `bad_row`."""
    from conftest import fixture_path

    lines = fixture_path("sdtm", "cdiscpilot01-slice", "ae.csv").read_text(
        "utf-8").splitlines()
    head, rows = lines[0], lines[1:]
    column = head.split(",").index("USUBJID")
    out = [head]
    for copy in range(4):
        for row in rows:
            cells = row.split(",")
            cells[column] = f"{cells[column]}-{copy}"
            out.append(",".join(cells))
    if bad_row:
        cells = out[7].split(",")
        cells[column] = ""
        out[7] = ",".join(cells)
    path = tmp_path / "ae.csv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _contents(opened: SqlStore) -> list[tuple]:
    with opened.engine.connect() as conn:
        bodies = [(t, i, v, canonical.loads(b)) for t, i, v, b in conn.exec_driver_sql(
            "SELECT res_type, res_id, fhir_version, body FROM resource_bodies "
            "ORDER BY 1, 2, 3")]
        tokens = conn.exec_driver_sql("SELECT * FROM idx_token ORDER BY 1, 2, 3, 4, 5, 6, 7"
                                      ).fetchall()
    for *_, body in bodies:
        body["meta"].pop("lastUpdated")
    return [*bodies, *tokens]


def test_parallel_adverse_event_load_parses_once_and_matches_inline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_adapter import parallel
    from fhir_adapter.sources import adverse_event_sdtm
    from fhir_adapter.store import open_store

    if not parallel.available():
        pytest.skip("no fork on this platform")
    monkeypatch.setattr(parallel, "BATCH", 16)  # several relay messages
    source = _ae_rows(tmp_path)
    parsed = tmp_path / "parsed"
    real = adverse_event_sdtm._sdtm_record

    def counted(*args: Any) -> Any:  # each process appends the rows it parsed
        with open(parsed, "a", encoding="utf-8") as fh:
            fh.write("row\n")
        return real(*args)

    monkeypatch.setattr(adverse_event_sdtm, "_sdtm_record", counted)
    options = {"study": "CDISCPILOT01", "intervention": "Xanomeline"}
    said: dict[bool, list[str]] = {True: [], False: []}
    stores = {}
    for mode in (True, False):
        parsed.write_text("", encoding="utf-8")
        stores[mode] = open_store(str(tmp_path / f"{mode}.db"))
        done = load_files("adverse-events", [source], store=stores[mode], parallel=mode,
                          warn=said[mode].append, **options)
        assert str(done) == f"{4 * 51 + 1} created, 0 updated, 0 unchanged"
        rows = len(parsed.read_text("utf-8").splitlines())
        assert rows == (4 * 51 if mode else 2 * 4 * 51)  # once, not once per version
    try:
        assert said[True] == said[False] and said[True]  # the same warnings and findings
        assert _contents(stores[True]) == _contents(stores[False])
    finally:
        for opened in stores.values():
            opened.close()


def test_parallel_adverse_event_load_of_a_bad_row_writes_nothing(tmp_path: Path) -> None:
    from fhir_adapter import parallel
    from fhir_adapter.store import open_store

    if not parallel.available():
        pytest.skip("no fork on this platform")
    opened = open_store(str(tmp_path / "bad.db"))
    try:
        with pytest.raises(InputError) as caught:
            load_files("adverse-events", [_ae_rows(tmp_path, bad_row=True)], store=opened,
                       parallel=True, study="CDISCPILOT01")
        assert [(e.row, e.field_name) for e in caught.value.rows] == [(7, "USUBJID")]
        assert opened.search(SearchQuery("AdverseEvent", "R4", [])).total == 0
    finally:
        opened.close()


@pytest.mark.parametrize("failing", ["R4", "R5"])
def test_parallel_adverse_event_load_stops_when_either_process_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    """A failure in the process that reads the file (R4) or in the one it passes the records
    to (R5), past the first relay batches: the load raises it, writes nothing, and neither
    process is left waiting on the other."""
    from fhir_adapter import parallel
    from fhir_adapter.pipeline import adverse_events
    from fhir_adapter.store import open_store

    if not parallel.available():
        pytest.skip("no fork on this platform")
    monkeypatch.setattr(parallel, "BATCH", 8)
    real = adverse_events.validate
    seen = [0]

    def failing_late(resource: dict, version: str, **options: Any) -> Any:
        seen[0] += 1
        if version == failing and seen[0] > 60:
            raise RuntimeError(f"{version} failed")
        return real(resource, version, **options)

    monkeypatch.setattr(adverse_events, "validate", failing_late)
    opened = open_store(str(tmp_path / "failing.db"))
    try:
        with pytest.raises(RuntimeError, match=f"{failing} failed"):
            load_files("adverse-events", [_ae_rows(tmp_path)], store=opened, parallel=True,
                       study="CDISCPILOT01")
        assert opened.search(SearchQuery("AdverseEvent", "R4", [])).total == 0
    finally:
        opened.close()
