"""Rebuild the search index of resources already stored (`fhir-adapter db reindex`): after a
SearchParameter is added (data/searchparameters/own-*.json) or an expression changes, rows
written before have no index rows for it; writes index at write time only.

Current versions are read back in batches and their index rows replaced in one unit per
batch, with the same code a write uses (indexing.index_tuples): a reindexed resource has
exactly the rows a fresh write of it would have. Versions and bodies are not touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from sqlalchemy import delete, insert, select

from ..errors import Gone, NotFound
from .canonical import loads
from .indexing import COLUMNS, index_tuples
from .schema import index_tables
from .schema import resources as res
from .sql import SqlStore

BATCH = 500


def _keys(store: SqlStore, resource_types: Sequence[str] | None) -> list[tuple[str, str]]:
    query = (select(res.c.res_type, res.c.res_id).where(res.c.deleted.is_(False))
             .order_by(res.c.res_type, res.c.res_id))
    if resource_types:
        query = query.where(res.c.res_type.in_(list(resource_types)))
    with store.engine.connect() as conn:
        return [(r.res_type, r.res_id) for r in conn.execute(query)]


def reindex(store: SqlStore, resource_types: Sequence[str] | None = None,
            progress: Callable[[int], None] | None = None) -> int:
    """Replace the index rows of every current resource (of `resource_types`, if given);
    the number of resources reindexed."""
    keys = _keys(store, resource_types)
    done = 0
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        with store.transaction() as tx:
            rows: dict[str, list[tuple]] = {table: [] for table in index_tables}
            current = []
            for rtype, rid in batch:
                try:
                    stored = tx.read(rtype, rid)
                except (NotFound, Gone):  # deleted since the keys were read
                    continue
                current.append((rtype, rid))
                for version, body in stored.body.items():
                    for table, found in index_tuples(loads(body), version).items():  # type: ignore[arg-type]
                        rows[table].extend(found)
            conn = tx._conn  # the unit's connection: delete and insert commit together
            assert conn is not None
            by_type: dict[str, list[str]] = defaultdict(list)
            for rtype, rid in current:
                by_type[rtype].append(rid)
            for table in index_tables.values():
                for rtype, ids in by_type.items():
                    conn.execute(delete(table).where(table.c.res_type == rtype,
                                                     table.c.res_id.in_(ids)))
            for name, found in rows.items():
                if found:
                    conn.execute(insert(index_tables[name]),
                                 [dict(zip(COLUMNS[name], r, strict=False)) for r in found])
        done += len(current)
        if progress:
            progress(done)
    store.analyze()
    return done
