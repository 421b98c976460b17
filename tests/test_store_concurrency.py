"""Correctness under concurrency, enforced by the database: threads with connections of
their own race for the same resource (SQLite and PostgreSQL)."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from store_backends import backend, postgres_database, store, store_url  # noqa: F401 (fixtures)

from fhir_adapter.errors import Conflict, FhirError
from fhir_adapter.store import SqlStore
from fhir_adapter.store.base import SearchQuery

IDENTIFIER = {"system": "urn:test:mrn", "value": "42"}


def race(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run action(i) in n threads released at once; results or raised FhirErrors."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(i)
        except FhirError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_conditional_create_writes_exactly_once(store: SqlStore) -> None:
    def create(i: int) -> str:
        resource = {"resourceType": "Patient", "identifier": [IDENTIFIER],
                    "name": [{"family": f"Racer{i}"}]}
        return store.create({"R4": resource},
                            if_none_exist="identifier=urn:test:mrn|42").outcome

    outcomes = Counter(race(8, create))
    assert outcomes == {"created": 1, "unchanged": 7}
    found = store.search(SearchQuery("Patient", "R4", [("identifier", "urn:test:mrn|42")]))
    assert found.total == 1


def test_if_match_lets_one_update_win(store: SqlStore) -> None:
    store.update({"R4": {"resourceType": "Patient", "id": "p", "active": True}})

    def update(i: int) -> Any:
        resource = {"resourceType": "Patient", "id": "p", "active": True,
                    "name": [{"family": f"Writer{i}"}]}
        return store.update({"R4": resource}, if_match=1)

    results = race(2, update)
    statuses = sorted(getattr(r, "status", 200) for r in results)
    assert statuses == [200, 412]
    assert store.read("Patient", "p").version_id == 2


def test_concurrent_creates_of_one_id(store: SqlStore) -> None:
    def create(i: int) -> Any:
        return store.create({"R4": {"resourceType": "Patient", "id": "same", "active": True}})

    results = race(8, create)
    assert sum(not isinstance(r, FhirError) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, FhirError))
    assert store.read("Patient", "same").version_id == 1


def test_concurrent_updates_keep_versions_dense(store: SqlStore) -> None:
    def update(i: int) -> int:
        resource = {"resourceType": "Patient", "id": "busy", "name": [{"family": f"N{i}"}]}
        return store.update({"R4": resource}).stored.version_id

    versions = race(8, update)
    assert sorted(versions) == list(range(1, 9))
    assert [h.version_id for h in store.history("Patient", "busy")] == list(range(8, 0, -1))


def test_lock_serialises_search_then_write(store: SqlStore) -> None:
    """The conditional-update pattern: lock, search, then create only if nothing matched."""

    def upsert(i: int) -> str:
        with store.transaction() as tx:
            tx.lock("Patient?identifier=urn:test:mrn|42")
            found = tx.search(SearchQuery("Patient", "R4", [("identifier", "urn:test:mrn|42")],
                                          count=1))
            if found.matches:
                return "found"
            tx.create({"R4": {"resourceType": "Patient", "identifier": [IDENTIFIER]}})
            return "created"

    assert Counter(race(8, upsert)) == {"created": 1, "found": 7}


def test_conditional_create_criteria_in_r5_names(store: SqlStore) -> None:
    subject = {"resourceType": "ResearchSubject", "status": "active",
               "study": {"reference": "ResearchStudy/s"},
               "subject": {"reference": "Patient/p"},
               "progress": [{"subjectState": {"coding": [{"code": "on-study"}]}}]}
    first = store.create({"R5": subject}, if_none_exist="subject_state=on-study", version="R5")
    again = store.create({"R5": subject}, if_none_exist="subject_state=on-study", version="R5")
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert again.stored.id == first.stored.id
    with pytest.raises(Conflict):
        store.create({"R5": {**subject, "id": first.stored.id}})
