"""Query plans of chains, `_has` and `:identifier` (store/chains.py) on the benchmark's
world (benchmarks/chains.py) of 10,000 AdverseEvents, ANALYZEd: every link reads through an
index (SQLite: SEARCH, never SCAN; PostgreSQL: no Seq Scan of an index table). No timing:
the cost at 100k and 1M is in benchmarks/RESULTS.md."""

# ruff: noqa: F811 (tests take the fixtures imported from store_backends as arguments)

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from store_backends import module_store  # noqa: F401 (fixtures)
from test_store_plans import assert_indexed

from fhir_adapter.store import SqlStore
from fhir_adapter.store.base import SearchQuery
from fhir_adapter.store.reading import search_statements

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.chains import cases, fill  # noqa: E402

SIZE = 10_000
CASES = cases(SIZE)


@pytest.fixture(scope="module")
def world(module_store: SqlStore) -> SqlStore:
    fill(module_store, SIZE)
    return module_store


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_feature_reads_through_indexes(world: SqlStore, case: str) -> None:
    rtype, params, total = CASES[case]
    query = SearchQuery(rtype, "R4", params, count=20, strict=True)
    assert world.search(query).total == total
    count, page, _ = search_statements(query)
    for statement in (count, page):
        text = assert_indexed(world, statement, total)
        if world.engine.dialect.name == "sqlite":  # the index tables' own indexes
            assert "USING INDEX ix_" in text or "USING COVERING INDEX ix_" in text, text
