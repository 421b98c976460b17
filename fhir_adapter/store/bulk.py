"""Bulk create-or-update for the loader: the same outcome as one `update()` per resource, in
a few statements per batch of resources instead of ~12 per resource.

Per batch: one SELECT of the batch's current rows (FOR UPDATE on PostgreSQL; SQLite write
units hold the write lock already), then the INSERTs of new rows, versions, bodies and index
rows (sqlite3 executemany, run in C; PostgreSQL COPY, one round trip per table: psycopg's
pipelined executemany cost ~0.1 ms per index row), an executemany UPDATE of the changed rows
(checked by row count, as single writes check theirs) and a DELETE of their old index rows.
Content whose hash equals the stored one writes nothing. Statements are plain SQL built once
per dialect and run on the DB-API cursor: SQLAlchemy's per-call expression building cost more
than the writes (measured: ~2/3 of a load). Index tables that are empty when the load starts
(on PostgreSQL: when the store holds no resources) get their b-trees built at its end
(DeferredIndexes).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from itertools import chain
from typing import Any, NamedTuple

from ..errors import BadRequest, Conflict, PreconditionFailed
from ..fhirversion import FhirVersion, normalise_version
from .canonical import content_hash, dumps, with_meta_bytes, without_version_meta
from .indexing import COLUMNS as INDEX_COLUMNS
from .indexing import EXTRACTORS, index_tuples

BATCH = 500
# SQLite page cache of a bulk load's connection (KiB when negative): 64 MiB, then flat.
SQLITE_CACHE = -65536
# While DeferredIndexes builds the indexes of tables of SORT_ROWS rows or more: the page
# cache (which sizes the sorter's runs) and the sorter's worker threads. Measured: 100k
# token rows (10k AEs) built faster with the load's cache, 200k date rows (100k AEs) and
# more faster in small runs on two threads.
SORT_ROWS = 200_000
SORT_CACHE = -8192
SORT_THREADS = 2
# PostgreSQL's maintenance_work_mem while it builds a load's deferred indexes.
PG_SORT_MEMORY = "256MB"
# Rows per INSERT statement on SQLite (VALUES (...), (...), ...). sqlite3's executemany
# resets, binds and steps once per statement: an 8-column index row took 3.0 us a row one
# by one and 1.7 us twenty at a time (40 at a time no faster, 100 slower again).
SQLITE_ROWS = 20


class Rep(NamedTuple):
    """One representation made ready to write, without the store-owned meta: its canonical
    bytes and its index rows. The loader makes these in its mapping processes, so the writer
    neither serialises nor indexes (and bytes and tuples unpickle several times faster than
    the resource's dict)."""

    rtype: str
    rid: str
    plain: bytes  # dumps of the resource, without meta.versionId/lastUpdated
    rows: dict[str, list[tuple]]  # index rows by table (non-empty tables only)
    resource: dict[str, Any] | None  # kept only when it has a meta to merge the long way


def prepare(resources: Mapping[str, dict[str, Any]], new_id: bool
            ) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """Check the representations agree on type and id and return them in canonical element
    order without the store-owned meta (versionId, lastUpdated). Validating them is the
    caller's (validation.validate): the store stores."""
    if not resources:
        raise BadRequest("nothing to write: no representation given")
    reps = {normalise_version(v): r for v, r in resources.items()}
    named = [(r.get("resourceType"), r.get("id")) for r in reps.values()]
    if any(not isinstance(t, str) or not isinstance(i, (str, type(None))) for t, i in named):
        raise BadRequest("resourceType and id must be strings")  # (and hashable, below)
    types = {t for t, _ in named}
    ids = {i for _, i in named} - {None}
    if len(types) != 1:
        raise BadRequest("the representations disagree on resourceType (or lack it)")
    if len(ids) > 1:
        raise BadRequest(f"the representations disagree on the id: {sorted(ids)}")
    rtype = next(iter(types))
    rid = next(iter(ids)) if ids else (str(uuid.uuid4()) if new_id else None)
    if not isinstance(rid, str):
        raise BadRequest(f"{rtype}: an update needs the resource id")
    out: dict[str, dict[str, Any]] = {}
    for version, resource in sorted(reps.items()):
        body = without_version_meta(resource)
        ordered = {"resourceType": rtype, "id": rid}
        ordered.update((k, v) for k, v in body.items() if k not in ("resourceType", "id"))
        out[version] = ordered
    return rtype, rid, out


def representation(resource: dict[str, Any], version: FhirVersion) -> Rep:
    """One mapped (already validated) representation as bulk_upsert writes it: what the
    loader's mapping processes send to the writer instead of the dict. No SQLAlchemy on
    this path: the mapping processes start before the parent has imported it."""
    if "meta" not in resource and version in ("R4", "R5"):
        first = iter(resource)  # already in prepare()'s order, as the mappings make them
        if next(first, None) == "resourceType" and next(first, None) == "id":
            rtype, rid = resource["resourceType"], resource["id"]
            if type(rtype) is str and type(rid) is str:
                return represent(rtype, rid, version, resource)
    rtype, rid, reps = prepare({version: resource}, new_id=False)
    return represent(rtype, rid, version, reps[version])


def represent(rtype: str, rid: str, version: str, ordered: dict[str, Any]) -> Rep:
    """The Rep of a resource that prepare() has put in canonical order."""
    rows = {t: r for t, r in index_tuples(ordered, version).items() if r}  # type: ignore[arg-type]
    return Rep(rtype, rid, dumps(ordered), rows,
               ordered if "meta" in ordered else None)


class Prepared:
    """One resource ready to write: its representations and their content hash."""

    __slots__ = ("rtype", "rid", "reps", "digest")

    def __init__(self, rtype: str, rid: str, reps: dict[str, Rep]) -> None:
        self.rtype, self.rid, self.reps = rtype, rid, reps
        self.digest = content_hash({v: r.plain for v, r in reps.items()})


# table -> its columns as the bulk INSERTs / COPYs name them
COLUMNS: dict[str, tuple[str, ...]] = {
    "resources": ("res_type", "res_id", "version_id", "deleted", "last_updated",
                  "content_hash"),
    "resource_versions": ("res_type", "res_id", "version_id", "last_updated", "method",
                          "deleted"),
    "resource_bodies": ("res_type", "res_id", "version_id", "fhir_version", "body"),
    **{f"idx_{table}": columns for table, columns in INDEX_COLUMNS.items()},
}


def insert_sql(table: str, p: str, rows: int = 1) -> str:
    """INSERT of `rows` rows of every column of `table` (COLUMNS), parameter style `p`."""
    names = COLUMNS[table]
    row = f"({', '.join([p] * len(names))})"
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES " + ", ".join([row] * rows)


@cache
def statements(dialect: str) -> dict[str, str]:
    """The bulk statements in the driver's parameter style (sqlite3 ?, psycopg %s)."""
    p = "%s" if dialect == "postgresql" else "?"
    out = {
        "update_res": f"UPDATE resources SET version_id = {p}, deleted = {p}, "
                      f"last_updated = {p}, content_hash = {p} "
                      f"WHERE res_type = {p} AND res_id = {p} AND version_id = {p}",
    }
    for table, names in COLUMNS.items():
        if dialect == "postgresql":  # COPY: one round trip per table and batch
            out[table] = f"COPY {table} ({', '.join(names)}) FROM STDIN"
        else:
            out[table] = insert_sql(table, p)
            out[f"{table}*"] = insert_sql(table, p, SQLITE_ROWS)
    for table in EXTRACTORS:
        out[f"unindex_{table}"] = f"DELETE FROM idx_{table} WHERE res_type = {p} AND res_id = {p}"
    return out


def _insert(cur: Any, dialect: str, table: str, rows: list[tuple]) -> None:
    known = statements(dialect)
    sql = known[table]
    if dialect != "postgresql":
        whole = len(rows) - len(rows) % SQLITE_ROWS
        columns = len(COLUMNS[table])
        if whole and set(map(len, rows)) != {columns}:
            whole = 0  # a row of another width: one by one, where sqlite3 names it
        if whole:  # SQLITE_ROWS rows a statement, their values in one flat list
            flat = list(chain.from_iterable(rows[:whole] if whole < len(rows) else rows))
            width = columns * SQLITE_ROWS
            cur.executemany(known[f"{table}*"],
                            [flat[at:at + width] for at in range(0, len(flat), width)])
        if whole < len(rows):
            cur.executemany(sql, rows[whole:])
        return
    with cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


class DeferredIndexes:
    """The search-index b-trees of index tables that are empty when a bulk load starts are
    dropped, and built once the load's rows are in (CREATE INDEX sorts; row by row, each of
    ~18 index rows per AE went into 3 b-trees at random places, which grows costlier as they
    outgrow the cache). All inside the load's transaction: a failed load rolls the drop back.
    An update of a resource written earlier in the same load needs the by-resource indexes:
    they are built then.

    SQLite: readers (WAL) see the indexed tables throughout. PostgreSQL: only when the store
    holds no resources at all, since DROP INDEX locks the table until the commit: a reader
    of the empty store waits for the load (as a SQLite reader does in rollback-journal mode,
    sql._one_write) rather than reading nothing. Index maintenance there was per row on the
    server (100k AEs: ~1.9M index rows into 3 b-trees each); CREATE INDEX sorts, with
    PostgreSQL's parallel maintenance workers."""

    def __init__(self, cur: Any, dialect: str = "sqlite") -> None:
        from sqlalchemy.dialects import postgresql, sqlite
        from sqlalchemy.schema import CreateIndex

        from .schema import index_tables

        self._dialect = dialect
        # index name -> (its table, its CREATE INDEX), while not built
        self._ddl: dict[str, tuple[str, str]] = {}
        if dialect == "postgresql":
            cur.execute("SELECT 1 FROM resources LIMIT 1")
            if cur.fetchone() is not None:
                return
        compiler = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
        for table in index_tables.values():
            cur.execute(f"SELECT 1 FROM {table.name} LIMIT 1")
            if cur.fetchone() is not None:
                continue
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                self._ddl[str(index.name)] = (table.name, str(
                    CreateIndex(index, if_not_exists=True).compile(dialect=compiler)))
                cur.execute(f"DROP INDEX IF EXISTS {index.name}")

    def by_resource(self, cur: Any) -> None:
        """Build the (res_type, res_id, ...) indexes now: rows are about to be deleted."""
        for name in [n for n in self._ddl if n.endswith("_res")]:
            cur.execute(self._ddl.pop(name)[1])

    def finish(self, cur: Any) -> None:
        """Build every index still missing."""
        if not self._ddl:
            return
        if self._dialect == "postgresql":
            # Sorts in memory up to maintenance_work_mem (64 MB by default: 100k AEs' token
            # rows spilled to disk); SET LOCAL ends with the load's transaction.
            cur.execute(f"SET LOCAL maintenance_work_mem = '{PG_SORT_MEMORY}'")
            for name in list(self._ddl):
                cur.execute(self._ddl.pop(name)[1])
            return
        self._finish_sqlite(cur)

    def _finish_sqlite(self, cur: Any) -> None:
        """CREATE INDEX sorts in memory up to the page cache's size: with the load's 64 MiB
        cache, one run on one thread. The indexes of tables of SORT_ROWS rows or more are
        built with an 8 MiB cache and two sorting threads: their keys are sorted in runs two
        at a time, each run small enough for the CPU's caches (1M token rows, side by side:
        1.01 s -> 0.56 s an index; without the second thread 0.80 s). Smaller tables sort in
        one run anyway, and shrinking the cache would only write out and read back their
        pages (10k AEs: 0.04 s more)."""
        rows: dict[str, int] = {}
        for table, _ in self._ddl.values():
            if table not in rows:
                cur.execute(f"SELECT max(rowid) FROM {table}")
                rows[table] = cur.fetchone()[0] or 0
        large = [name for name, (table, _) in self._ddl.items() if rows[table] >= SORT_ROWS]
        cur.execute("PRAGMA cache_size")
        cache = cur.fetchone()[0]
        try:
            for name in [n for n in self._ddl if n not in large]:
                cur.execute(self._ddl.pop(name)[1])
            if large:
                cur.execute(f"PRAGMA cache_size={SORT_CACHE}")
                cur.execute(f"PRAGMA threads={SORT_THREADS}")
                for name in large:
                    cur.execute(self._ddl.pop(name)[1])
        finally:
            cur.execute("PRAGMA threads=0")
            cur.execute(f"PRAGMA cache_size={int(cache)}")


def bulk_write(cur: Any, dialect: str, items: Iterable[Prepared],
               now: Callable[[], str]) -> Iterator[tuple[str, str]]:
    """Store.bulk_upsert on a DB-API cursor inside the caller's transaction: every batch
    written, (type, outcome) per item, the deferred indexes built at the end (also when the
    load stopped early: a transaction is never committed without them)."""
    cache = None
    if dialect == "sqlite":  # index b-trees outgrow the 2 MiB default: -20% CPU
        cur.execute("PRAGMA cache_size")
        cache = cur.fetchone()[0]
        cur.execute(f"PRAGMA cache_size={SQLITE_CACHE}")
    deferred = DeferredIndexes(cur, dialect)
    try:
        for batch in batches(items):
            yield from write_batch(cur, dialect, batch, now(), deferred)
    finally:
        try:
            deferred.finish(cur)
        finally:
            if cache is not None:
                cur.execute(f"PRAGMA cache_size={int(cache)}")
            cur.close()


def _current_rows(cur: Any, dialect: str, rtype: str, ids: list[str]) -> dict[str, tuple]:
    """id -> (version_id, deleted, content_hash, last_updated) of the ids that have a row."""
    cols = "res_id, version_id, deleted, content_hash, last_updated FROM resources"
    if dialect == "postgresql":
        # Not prepared: psycopg prepares a statement on its 5th run, and PostgreSQL then keeps
        # a generic plan costed on the table as it was then. In a load into a new database
        # that was a sequential scan, run for every batch as the table grew (100k AEs: 54 s
        # of an 87 s load; planned each time: 2.6 s).
        cur.execute(f"SELECT {cols} WHERE res_type = %s AND res_id = ANY(%s) FOR UPDATE",
                    (rtype, ids), prepare=False)
    else:
        marks = ", ".join("?" * len(ids))
        cur.execute(f"SELECT {cols} WHERE res_type = ? AND res_id IN ({marks})", (rtype, *ids))
    return {r[0]: tuple(r[1:]) for r in cur.fetchall()}


def _is_integrity_error(exc: BaseException) -> bool:
    return any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)


def write_batch(cur: Any, dialect: str, batch: list[Prepared], now: str,
                deferred: DeferredIndexes | None = None) -> list[tuple[str, str]]:
    """Write one batch (distinct (type, id) keys) on the cursor; (type, outcome) per item."""
    sql = statements(dialect)
    current: dict[tuple[str, str], tuple] = {}
    for rtype in {p.rtype for p in batch}:
        ids = [p.rid for p in batch if p.rtype == rtype]
        current.update(((rtype, k), v) for k, v in _current_rows(cur, dialect, rtype, ids).items())
    outcomes: list[tuple[str, str]] = []
    new_rows, changed, unindex, versions, bodies = [], [], [], [], []
    index: dict[str, list[tuple]] = {table: [] for table in EXTRACTORS}
    for item in batch:
        row = current.get((item.rtype, item.rid))
        version = row[0] if row else 0
        exists = version > 0 and not row[1]  # type: ignore[index]
        if exists and row[2] == item.digest:  # type: ignore[index]
            outcomes.append((item.rtype, "unchanged"))
            continue
        new = version + 1
        if row is None:
            new_rows.append((item.rtype, item.rid, new, False, now, item.digest))
        else:
            changed.append((new, False, now, item.digest, item.rtype, item.rid, version))
            if version:
                unindex.append((item.rtype, item.rid))
        versions.append((item.rtype, item.rid, new, now, "PUT", False))
        for fhir_version, rep in item.reps.items():
            bodies.append((item.rtype, item.rid, new, fhir_version, stored_body(rep, new, now)))
            add_index_rows(index, rep)
        outcomes.append((item.rtype, "updated" if exists else "created"))
    if new_rows:
        try:
            _insert(cur, dialect, "resources", new_rows)
        except Exception as exc:
            if _is_integrity_error(exc):  # created by a concurrent writer since the SELECT
                raise Conflict("resources of this file were created concurrently; "
                               "load it again") from exc
            raise
    if changed:
        cur.executemany(sql["update_res"], changed)
        if cur.rowcount not in (-1, len(changed)):  # another writer got there first
            raise PreconditionFailed("resources of this file changed concurrently; "
                                     "load it again")
    if versions:
        _insert(cur, dialect, "resource_versions", versions)
        _insert(cur, dialect, "resource_bodies", bodies)
    if unindex:
        if deferred is not None:
            deferred.by_resource(cur)
        for table in EXTRACTORS:
            cur.executemany(sql[f"unindex_{table}"], unindex)
    for table, rows in index.items():
        if rows:
            _insert(cur, dialect, f"idx_{table}", rows)
    return outcomes


def batches(items: Iterable[Prepared], size: int = BATCH) -> Iterator[list[Prepared]]:
    """Batches of at most `size` with distinct (type, id): a repeated key starts a new batch,
    so its second write sees the first (as consecutive update() calls would)."""
    batch: list[Prepared] = []
    keys: set[tuple[str, str]] = set()
    for item in items:
        key = (item.rtype, item.rid)
        if len(batch) >= size or key in keys:
            yield batch
            batch, keys = [], set()
        batch.append(item)
        keys.add(key)
    if batch:
        yield batch


def stored_body(rep: Rep, version_id: int, now: str) -> bytes:
    """The stored bytes: the plain bytes with the store's meta spliced in after the id."""
    resource = rep.resource or {"resourceType": rep.rtype, "id": rep.rid}
    return with_meta_bytes(rep.plain, resource, version_id, now)


def add_index_rows(index: dict[str, list[tuple]], rep: Rep) -> None:
    """Append the index rows of `rep` to `index` (table -> tuples in COLUMNS[f"idx_{table}"]
    order). The store-owned meta adds none: `_lastUpdated` is searched in the resources
    table (indexing.UNINDEXED), so the mapping processes make every row."""
    for table, rows in rep.rows.items():
        index[table].extend(rows)


def prepared(resources: Iterable[Mapping[str, Any]]) -> Iterator[Prepared]:
    """Prepared items from {version: resource} mappings via prepare(), or from
    {version: Rep} mappings that `represent` made already (the loader's mapping processes)."""
    for reps in resources:
        first = next(iter(reps.values()), None)
        if isinstance(first, Rep):
            keys = {(r.rtype, r.rid) for r in reps.values()}
            if len(keys) != 1:
                raise ValueError(f"representations of different resources paired: {keys}")
            yield Prepared(first.rtype, first.rid, dict(reps))
            continue
        rtype, rid, ordered = prepare(reps, new_id=False)
        yield Prepared(rtype, rid, {v: represent(rtype, rid, v, r) for v, r in ordered.items()})
