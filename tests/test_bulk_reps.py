"""The loader's mapping processes send each representation as a bulk.Rep (canonical bytes
and index rows without the store-owned meta); the writer splices the meta into the bytes and
adds the rows that meta indexes. That must give exactly what indexing and serialising the
final resource gives, for every resource the store may see: our mappings' output, resources
with a client meta, the official examples. And the loader's GC settings must not outlive it.
"""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_indexing_equivalence import mapped, official_examples

from fhir_adapter.pipeline import load as loader
from fhir_adapter.store import bulk, canonical
from fhir_adapter.store.bulk import prepare, representation
from fhir_adapter.store.indexing import index_tuples

NOW = "2026-11-25T10:11:12.345Z"


def assert_rep_is_the_final_resource(resource: dict[str, Any], version: str,
                                     version_id: int) -> None:
    rep = representation(resource, version)  # type: ignore[arg-type]
    rtype, rid, ordered = prepare({version: resource}, new_id=False)
    final = canonical.with_meta(ordered[version], rid, version_id, NOW)
    assert bulk.stored_body(rep, version_id, NOW) == canonical.dumps(final)
    got: dict[str, Counter[tuple]] = {}
    for table, rows in rep.rows.items():
        got.setdefault(table, Counter()).update(rows)
    want = {t: Counter(rows) for t, rows in index_tuples(final, version).items() if rows}
    assert got == want, f"{rtype}/{rid} {version}"


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_mapped_resources(version: str, tmp_path: Path) -> None:
    seen = 0
    for resource in mapped(version, tmp_path):
        assert_rep_is_the_final_resource(resource, version, 1)
        seen += 1
    assert seen > 150


@pytest.mark.parametrize("version_id", [1, 7])
def test_client_meta_and_stale_store_meta(version_id: int) -> None:
    tagged = {"resourceType": "Patient", "id": "t1", "gender": "female",
              "meta": {"versionId": "3", "lastUpdated": "2020-01-01T00:00:00Z",
                       "profile": ["http://example.org/p"],
                       "tag": [{"system": "urn:t", "code": "x"}], "source": "urn:s"}}
    only_store_meta = {"resourceType": "Patient", "id": "t2",
                       "meta": {"versionId": "3", "lastUpdated": "2020-01-01T00:00:00Z"}}
    for version in ("R4", "R5"):
        for resource in (tagged, only_store_meta):
            assert_rep_is_the_final_resource(resource, version, version_id)
    assert representation(tagged, "R4").resource is not None  # meta merged the long way
    assert representation(only_store_meta, "R4").resource is None


def test_official_examples() -> None:
    examples = official_examples()
    if not examples:
        pytest.skip("official examples not present under tests/fixtures")
    for version, resource in examples:
        assert_rep_is_the_final_resource(resource, version, 2)


def test_pairing_reps_of_different_resources_is_refused() -> None:
    a = representation({"resourceType": "Patient", "id": "a"}, "R4")
    b = representation({"resourceType": "Patient", "id": "b"}, "R5")
    with pytest.raises(ValueError, match="different resources"):
        list(bulk.prepared([{"R4": a, "R5": b}]))


def test_loading_restores_the_garbage_collector() -> None:
    before = gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()
    with loader._gc_for_loading():
        assert gc.get_threshold()[0] > before[0][0]
    assert (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()) == before
    with pytest.raises(RuntimeError), loader._gc_for_loading():
        raise RuntimeError("a failing load")
    assert (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()) == before


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_store_meta_adds_no_index_rows(version: str) -> None:
    """The writer adds no index rows for the meta it sets (bulk.add_index_rows): the
    mapping processes index resources without it. True while every parameter on
    meta.versionId or meta.lastUpdated is answered from the resources table."""
    from fhir_adapter.store.searchparams import RESOURCE_TYPES

    meta = {"versionId": "7", "lastUpdated": NOW}
    for rtype in RESOURCE_TYPES:
        bare = {"resourceType": rtype, "id": "x"}
        assert index_tuples({**bare, "meta": meta}, version) == index_tuples(bare, version), \
            rtype  # type: ignore[arg-type]
