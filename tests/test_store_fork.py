"""A store opened before a fork (gunicorn --preload opens it in the master, then forks the
workers): the child gets connections of its own, and the parent's keep working."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

import json
import os
from typing import Any

from store_backends import backend, postgres_database, store, store_url  # noqa: F401 (fixtures)

from fhir_adapter.store import SqlStore
from fhir_adapter.store.base import SearchQuery


def patient(pid: str) -> dict[str, dict[str, Any]]:
    return {v: {"resourceType": "Patient", "id": pid, "gender": "female"} for v in ("R4", "R5")}


def _session(store: SqlStore) -> Any:
    """Who this process's pooled connection is: PostgreSQL's backend pid, SQLite's handle."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        return id(conn.connection.driver_connection)


def test_a_forked_child_uses_connections_of_its_own(store: SqlStore) -> None:
    store.update(patient("before"))
    parent = _session(store)  # a connection now idle in the pool, inherited by the child
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report, then leave without running the parent's cleanup
        code = 1
        try:
            session = _session(store)  # the first connection the child takes
            found = store.search(SearchQuery("Patient", "R4", [])).total
            store.update(patient("from-child"))
            report = {"session": session, "found": found}
            os.write(writing, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        report = json.loads(pipe.read() or "{}")
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, report
    assert report["found"] == 1
    assert report["session"] != parent  # not the parent's connection
    assert _session(store) == parent  # which is still the parent's, and still works
    found = store.search(SearchQuery("Patient", "R5", [])).matches
    assert sorted(m.id for m in found) == ["before", "from-child"]
