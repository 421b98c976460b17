"""The store's writes and reads on SQLite and PostgreSQL: versions, tombstones, history,
transactions, and bytes that round-trip exactly."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from conftest import FIXTURES
from store_backends import backend, postgres_database, store, store_url  # noqa: F401 (fixtures)

from fhir_adapter.errors import Conflict, Gone, InvalidResource, NotFound, PreconditionFailed
from fhir_adapter.store import SqlStore, canonical, open_store
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.validation import checked


def patient(pid: str = "p1", family: str = "Zola", **extra: object) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}], **extra}


def parsed(stored_bytes: bytes) -> dict:
    return orjson.loads(stored_bytes)


def test_create_read_and_meta(store: SqlStore) -> None:
    written = store.create({"R4": patient()})
    assert written.outcome == "created"
    got = store.read("Patient", "p1")
    assert got.version_id == 1 and not got.deleted and got.method == "POST"
    body = parsed(got.json("R4"))
    assert list(body)[:3] == ["resourceType", "id", "meta"]
    assert body["meta"] == {"versionId": "1", "lastUpdated": got.last_updated}
    assert got.last_updated == "2026-01-02T03:04:06.000Z"
    assert "R5" not in got.body


def test_create_generates_id_and_refuses_existing(store: SqlStore) -> None:
    written = store.create({"R4": {"resourceType": "Patient", "active": True}})
    assert len(written.stored.id) == 36
    with pytest.raises(Conflict):
        store.create({"R4": {"resourceType": "Patient", "id": written.stored.id}})


def test_update_versions_and_unchanged(store: SqlStore) -> None:
    assert store.update({"R4": patient()}).outcome == "created"
    meta = {"versionId": "7", "lastUpdated": "2020-01-01T00:00:00Z"}
    again = store.update({"R4": patient(meta=meta)})
    assert again.outcome == "unchanged" and again.stored.version_id == 1
    assert again.stored.body == store.read("Patient", "p1").body
    changed = store.update({"R4": patient(family="Hugo")})
    assert changed.outcome == "updated" and changed.stored.version_id == 2
    assert parsed(store.vread("Patient", "p1", 1).json("R4"))["name"][0]["family"] == "Zola"
    assert parsed(store.read("Patient", "p1").json("R4"))["name"][0]["family"] == "Hugo"
    with pytest.raises(NotFound):
        store.vread("Patient", "p1", 3)


def test_both_versions_stored_and_compared(store: SqlStore) -> None:
    reps = {"R4": patient(), "R5": patient()}
    first = store.update(reps)
    assert set(first.stored.body) == {"R4", "R5"}
    assert store.update(reps).outcome == "unchanged"
    # Only R4 now: a new version that no longer has an R5 representation.
    only_r4 = store.update({"R4": patient()})
    assert only_r4.outcome == "updated" and set(store.read("Patient", "p1").body) == {"R4"}


def test_if_match(store: SqlStore) -> None:
    store.update({"R4": patient()})
    with pytest.raises(PreconditionFailed):
        store.update({"R4": patient(family="B")}, if_match=2)
    assert store.update({"R4": patient(family="B")}, if_match=1).stored.version_id == 2
    with pytest.raises(PreconditionFailed):
        store.update({"R4": patient("nobody")}, if_match=1)
    with pytest.raises(NotFound):  # the refused If-Match left nothing behind
        store.read("Patient", "nobody")


def test_delete_tombstone_history(store: SqlStore) -> None:
    store.update({"R4": patient()})
    store.update({"R4": patient(family="B")})
    tomb = store.delete("Patient", "p1")
    assert tomb is not None and tomb.deleted and tomb.version_id == 3
    with pytest.raises(Gone):
        store.read("Patient", "p1")
    with pytest.raises(Gone):
        store.vread("Patient", "p1", 3)
    assert store.vread("Patient", "p1", 2).version_id == 2
    assert store.delete("Patient", "p1") is None
    assert store.delete("Patient", "never") is None
    assert store.search(SearchQuery("Patient", "R4")).total == 0
    assert store.search(SearchQuery("Patient", "R4", [("family", "B")])).total == 0
    history = store.history("Patient", "p1")
    assert [(h.version_id, h.method, h.deleted) for h in history] == [
        (3, "DELETE", True), (2, "PUT", False), (1, "PUT", False)]
    assert history[0].body == {} and "R4" in history[1].body
    revived = store.update({"R4": patient(family="C")})
    assert revived.outcome == "created" and revived.stored.version_id == 4


def test_history_type_system_since_paging(store: SqlStore) -> None:
    for n in range(5):
        store.update({"R4": patient(f"p{n}")})
    store.update({"R4": {"resourceType": "Group", "id": "g", "type": "person",
                         "actual": True}})
    assert len(store.history("Patient")) == 5
    assert len(store.history()) == 6
    assert [h.id for h in store.history("Patient", count=2, offset=1)] == ["p3", "p2"]
    # The clock steps one second per write: p0 at :06 ... p4 at :10, the group at :11.
    assert [h.id for h in store.history(since="2026-01-02T03:04:09Z")] == ["g", "p4", "p3"]
    assert store.history(since="2026-01-03") == []


def test_invalid_resource_rejected_before_the_store(store: SqlStore) -> None:
    # The store stores; the caller validates (validation.checked, as the loader does).
    bad = {"R4": {"resourceType": "AdverseEvent", "id": "x", "actuality": "bogus",
                  "subject": {"reference": "Patient/1"}}}
    with pytest.raises(InvalidResource) as caught:
        for reps in checked([bad]):
            store.create(reps)
    assert any("actuality" in (i.expression or "") for i in caught.value.issues)
    with pytest.raises(NotFound):
        store.read("AdverseEvent", "x")


def test_transaction_rolls_back_everything(store: SqlStore) -> None:
    store.update({"R4": patient("kept")})
    with pytest.raises(InvalidResource), store.transaction() as tx:
        tx.update({"R4": patient("a")})
        tx.update({"R4": patient("kept", family="Changed")})
        tx.delete("Patient", "kept")
        for reps in checked([{"R4": {"resourceType": "Patient", "id": "b", "gender": "robot"}}]):
            tx.update(reps)
    with pytest.raises(NotFound):
        store.read("Patient", "a")
    kept = store.read("Patient", "kept")
    assert kept.version_id == 1 and parsed(kept.json("R4"))["name"][0]["family"] == "Zola"
    assert store.search(SearchQuery("Patient", "R4", [("family", "changed")])).total == 0
    with store.transaction() as tx:
        tx.update({"R4": patient("a")})
        assert tx.read("Patient", "a").version_id == 1  # visible inside the unit
    assert store.read("Patient", "a").version_id == 1


def test_bytes_round_trip_exactly(store: SqlStore) -> None:
    text = (b'{"resourceType":"Group","id":"g1","extension":[{"url":"http://x.org/e",'
            b'"valueDecimal":1.50}],"type":"person","actual":true,"quantity":3,'
            b'"characteristic":[{"code":{"text":"weight"},"valueQuantity":{"value":70.250,'
            b'"unit":"kg"},"exclude":false,"period":{"start":"2020-01-01T10:00:00Z"}}],'
            b'"member":[{"entity":{"reference":"Patient/p1"},'
            b'"period":{"start":"2021-03-04T05:06:07.890Z"}}]}')
    resource = canonical.loads(text)
    stored = store.update({"R4": resource}).stored
    body = store.read("Group", "g1").json("R4")
    assert body == stored.json("R4")
    meta = b'"meta":{"versionId":"1","lastUpdated":"' + stored.last_updated.encode() + b'"},'
    assert body == text.replace(b'"id":"g1",', b'"id":"g1",' + meta)
    assert b"1.50" in body and b"70.250" in body and b"05:06:07.890Z" in body


def _examples(folder: str) -> list[Path]:
    found = sorted((FIXTURES / "fhir" / "examples" / folder).glob("*.json"))
    if not found:
        pytest.skip(f"official examples not present under {FIXTURES} (set FHIR_ADAPTER_SHARED)")
    return found


@pytest.mark.parametrize("folder,version", [("r4", "R4"), ("r5", "R5")])
def test_official_examples_read_back_unchanged(store: SqlStore, folder: str,
                                               version: str) -> None:
    for path in _examples(folder):
        original = canonical.loads(path.read_bytes())
        store.update({version: original})
        assert store.update({version: original}).outcome == "unchanged"
        back = canonical.loads(store.read(original["resourceType"], original["id"]).json(
            version))
        assert back["meta"]["versionId"] == "1"
        back.pop("meta")
        original.pop("meta", None)
        # Same keys, same order, same decimal and instant text.
        assert canonical.dumps(back) == canonical.dumps(original), path.name


def test_iter_all_streams_every_current_resource(store: SqlStore) -> None:
    for n in range(7):
        store.update({"R4": patient(f"p{n}"), "R5": patient(f"p{n}")})
    store.delete("Patient", "p3")
    store.update({"R4": {"resourceType": "Group", "id": "g", "type": "person",
                         "actual": True}})
    everything = list(store.iter_all())
    assert [(s.resource_type, s.id) for s in everything] == [("Group", "g")] + [
        ("Patient", f"p{n}") for n in range(7) if n != 3]
    assert all(set(s.body) == {"R4", "R5"} for s in everything[1:])
    assert [s.id for s in store.iter_all(["Group"])] == ["g"]
    r5 = list(store.iter_all(["Patient", "Group"], version="R5"))
    assert [s.id for s in r5] == [f"p{n}" for n in range(7) if n != 3]  # the Group is R4 only
    assert all(set(s.body) == {"R5"} and s.json("R5") == store.read("Patient", s.id).json("R5")
               for s in r5)
    # Streamed: a consumer that stops early leaves no cursor open on the connection.
    first = store.iter_all()
    next(first)
    first.close()
    assert len(list(store.iter_all(["Patient"]))) == 6


def test_schema_creation_is_idempotent(store_url: str) -> None:
    first = open_store(store_url)
    first.update({"R4": patient()})
    first.close()
    second = open_store(store_url)
    assert second.read("Patient", "p1").version_id == 1
    second.close()
