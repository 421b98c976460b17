"""The store side of the fast path: SQLite reads and searches run on connections kept outside
SQLAlchemy's pool (store/idle.py). They see every commit at once, end a transaction an error
left open, survive close(), and serve many threads at a time while another writes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from fhir_adapter.errors import NotFound
from fhir_adapter.store import SearchQuery, open_store


def _patient(rid: str, gender: str = "female") -> dict[str, Any]:
    return {"R4": {"resourceType": "Patient", "id": rid, "gender": gender}}


def test_reads_see_each_commit_and_survive_close(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'fhir.db'}")
    store.update(_patient("a"))
    assert store.read("Patient", "a").version_id == 1
    store.update(_patient("a", "male"))  # written on a pooled connection
    assert store.read("Patient", "a").version_id == 2
    store.close()
    assert store.read("Patient", "a").version_id == 2  # connections are opened again
    with pytest.raises(NotFound):
        store.read("Patient", "b")
    store.close()


def test_an_open_transaction_is_ended_when_a_connection_goes_back(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'fhir.db'}")
    idle = store._idle
    assert idle is not None
    raw = idle.take()
    raw.execute("BEGIN")
    raw.execute("SELECT count(*) FROM resources").fetchall()  # holds a snapshot
    idle.give(raw)
    assert not raw.in_transaction
    store.update(_patient("c"))
    assert store.read("Patient", "c").version_id == 1  # not the old snapshot
    store.close()


def test_many_threads_read_and_search_while_one_writes(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'fhir.db'}")
    for n in range(30):
        store.update(_patient(f"p{n}"))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            for n in range(200):
                assert store.read("Patient", f"p{n % 30}").id == f"p{n % 30}"
                found = store.search(SearchQuery("Patient", "R4", [("gender", "female")],
                                                 count=10))
                assert len(found.matches) == 10 and found.total is not None
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def writer() -> None:
        n = 0
        while not stop.is_set():
            store.update(_patient(f"w{n % 5}", "male" if n % 2 else "female"))
            n += 1

    threads = [threading.Thread(target=reader) for _ in range(6)]
    writing = threading.Thread(target=writer)
    writing.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    writing.join()
    assert not errors, errors[0]
    assert store._idle is not None and 1 <= len(store._idle.free) <= 6
    store.close()
