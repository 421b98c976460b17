"""The store on SQLAlchemy Core: one code path for SQLite and PostgreSQL.

Writes: the resource's row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite write
units begin IMMEDIATE, so they run one at a time), then the new version is written with
`UPDATE resources ... WHERE version_id = <the version read>` and its row count checked, so an
If-Match can never pass twice. A new id is first inserted as a version-0 placeholder with
ON CONFLICT DO NOTHING: a concurrent creator of the same id waits for the first to commit
and then sees it. Conditional creates serialise on a row of `locks` named after the criteria.
The loader's bulk_upsert (bulk.py) writes batches with the same outcomes per resource.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import BadRequest, Conflict, PreconditionFailed
from .base import FhirVersion, SearchQuery, Stored, WriteResult
from .bulk import (
    bulk_write,
    prepare,
    prepared,
    represent,
    stored_body,
)
from .reading import Reader
from .schema import create_schema, locks, make_engine
from .single import (
    Ready,
    advance,
    current_row,
    insert_new,
    ready,
    statements,
    write_deletion,
    write_version,
)
from .values import instant_text

STALE_SHARE = 10  # analyze() after a load that wrote at least 1/10 of the store's resources


class SqlStore(Reader):
    """The Store protocol (base.py). Thread-safe; `transaction()` yields a store bound to one
    connection whose writes commit together."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None,
                 conn: Connection | None = None) -> None:
        super().__init__(engine, conn)
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- units of work -------------------------------------------------------------------

    @contextmanager
    def transaction(self, bulk: bool = False) -> Iterator[SqlStore]:
        """A unit of work: every write inside commits together or not at all. `bulk`: a
        bulk load's unit, which on SQLite may write through a rollback journal (_one_write)."""
        if self._conn is not None:
            yield self
            return
        if not bulk or self.engine.dialect.name != "sqlite":
            with self._unit(write=True) as conn:
                yield SqlStore(self.engine, clock=self._clock, conn=conn)
            return
        with self.engine.connect() as conn:
            with _one_write(conn.connection.driver_connection):
                conn.execution_options(fhir_write=True)
                with conn.begin():
                    yield SqlStore(self.engine, clock=self._clock, conn=conn)

    def lock(self, key: str) -> None:
        """Serialise with every other unit locking `key` until this unit ends (use inside
        transaction(): e.g. a conditional update's search-then-write)."""
        with self._unit(write=True) as conn:
            self._lock(conn, key)

    def _lock(self, conn: Connection, key: str) -> None:
        name = hashlib.sha256(key.encode()).hexdigest()
        conn.execute(self._insert_ignore(conn, locks).values(name=name))
        conn.execute(select(locks.c.name).where(locks.c.name == name).with_for_update())

    @staticmethod
    def _insert_ignore(conn: Connection, table: Any) -> Any:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing()

    # -- writes ----------------------------------------------------------------------------

    def create(self, resources: Mapping[str, dict[str, Any]], *,
               if_none_exist: str | None = None, version: FhirVersion | None = None
               ) -> WriteResult:
        """New resource (409 Conflict if its id exists); with `if_none_exist` (search criteria
        such as 'identifier=sys|val' in the names of `version`) an existing single match is
        returned as 'unchanged', several raise PreconditionFailed. Exactly one of concurrent
        equal conditional creates writes."""
        rtype, rid, reps = prepare(resources, new_id=True)
        write = self._ready(rtype, rid, reps)  # before the unit: nobody waits for this
        with self._unit(write=True) as conn:
            if if_none_exist is not None:
                names = version or (next(iter(reps)) if len(reps) == 1 else "R4")
                existing = self._conditional_match(conn, rtype, names, if_none_exist)
                if existing is not None:
                    return WriteResult(existing, "unchanged")
            return self._write(conn, write, "POST", None, must_be_new=True)

    def update(self, resources: Mapping[str, dict[str, Any]], *,
               if_match: int | None = None) -> WriteResult:
        """Create-or-update by type and id; unchanged content keeps the version (and writes
        nothing). `if_match`: the version the caller read, else PreconditionFailed."""
        rtype, rid, reps = prepare(resources, new_id=False)
        write = self._ready(rtype, rid, reps)
        with self._unit(write=True) as conn:
            return self._write(conn, write, "PUT", if_match, must_be_new=False)

    @staticmethod
    def _ready(rtype: str, rid: str, reps: dict[str, dict[str, Any]]) -> Ready:
        return ready(rtype, rid, {v: represent(rtype, rid, v, r) for v, r in reps.items()})

    def bulk_upsert(self, resources: Iterable[Mapping[str, Any]]
                    ) -> Iterator[tuple[str, str]]:
        """update() of each {version: resource} (or {version: Rep}, see representation()),
        in batches (bulk.py): (type, outcome) per resource, yielded as its batch is written.
        Use inside transaction() for all or nothing; a representation that fails validation
        raises as it is pulled."""
        with self._unit(write=True) as conn:
            yield from bulk_write(conn.connection.cursor(), conn.dialect.name,
                                  prepared(resources), lambda: instant_text(self._clock()))

    def delete(self, resource_type: str, id: str) -> Stored | None:
        """Tombstone: a new version marked deleted, index rows removed. None when there was
        nothing (or only a tombstone) to delete."""
        with self._unit(write=True) as conn:
            cur, sql = self._cursor_of(conn)
            row = current_row(cur, sql, resource_type, id)
            if row is None or row[0] == 0 or row[1]:
                return None
            new, now = row[0] + 1, instant_text(self._clock())
            self._advance(cur, sql, resource_type, id, row[0], new, now, None, True)
            write_deletion(cur, sql, resource_type, id, new, now)
        return Stored(resource_type, id, new, now, True, {}, "DELETE")

    def analyze(self, written: int | None = None) -> None:
        """Refresh planner statistics (after bulk loads; SQLite needs them to pick indexes).
        ANALYZE reads every index (SQLite: ~2.4 s per 100k AEs), while statistics describe
        the data's shape, which a load of under a tenth of the store's resources barely
        moves: such a load, or one that wrote nothing, keeps the statistics there are."""
        if written == 0:
            return
        with self._unit(write=True) as conn:
            if written is not None and self._has_statistics(conn):
                stored = conn.exec_driver_sql("SELECT count(*) FROM resources").scalar_one()
                if written * STALE_SHARE < stored:
                    return
            conn.exec_driver_sql("ANALYZE")

    @staticmethod
    def _has_statistics(conn: Connection) -> bool:
        if conn.dialect.name != "sqlite":  # PostgreSQL's autovacuum keeps them too
            return True
        return conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                                    ).first() is not None

    def _conditional_match(self, conn: Connection, rtype: str, version: FhirVersion,
                           criteria: str) -> Stored | None:
        query = criteria.split("?", 1)[1] if "?" in criteria else criteria
        params = parse_qsl(query, keep_blank_values=True)
        if not params:
            raise BadRequest("If-None-Exist needs search criteria, e.g. identifier=system|value")
        self._lock(conn, f"{rtype}?{sorted(params)}")
        found = self._search(conn, SearchQuery(rtype, version, params, count=2, strict=True))
        if len(found.matches) > 1:
            raise PreconditionFailed(f"If-None-Exist matches {len(found.matches)} {rtype} "
                                     "resources; it must match at most one")
        return self._read(conn, rtype, found.matches[0].id) if found.matches else None

    @staticmethod
    def _cursor_of(conn: Connection) -> tuple[Any, dict[str, str]]:
        """The unit's DB-API cursor and the single-write statements of its dialect."""
        return conn.connection.cursor(), statements(conn.dialect.name)

    def _write(self, conn: Connection, write: Ready, method: str,
               if_match: int | None, must_be_new: bool) -> WriteResult:
        item = write.item
        rtype, rid, digest = item.rtype, item.rid, item.digest
        cur, sql = self._cursor_of(conn)
        # A create tries the insert of its new id first: one statement fewer (a round trip
        # on PostgreSQL); should the id exist, the insert does nothing and the row is read.
        row = None if must_be_new else current_row(cur, sql, rtype, rid)
        if row is None:
            if if_match is not None:
                raise PreconditionFailed(f"{rtype}/{rid} does not exist (If-Match {if_match})")
            now = instant_text(self._clock())
            if insert_new(cur, sql, rtype, rid, False, now, digest):
                bodies = write_version(cur, sql, write, 1, now, method, reindex=False)
                return WriteResult(Stored(rtype, rid, 1, now, False, bodies, method),
                                   "created")
            row = current_row(cur, sql, rtype, rid)  # a concurrent creator committed it
        current, deleted, content_hash, last_updated = row
        exists = current > 0 and not deleted
        if must_be_new and exists:
            raise Conflict(f"{rtype}/{rid} already exists")
        if if_match is not None and if_match != current:
            raise PreconditionFailed(
                f"{rtype}/{rid} is at version {current}, not {if_match}",
                headers={"ETag": f'W/"{current}"'} if current else None)
        if exists and content_hash == digest:  # same content: the stored bytes, rebuilt
            same = {v: stored_body(rep, current, last_updated)
                    for v, rep in item.reps.items()}
            return WriteResult(Stored(rtype, rid, current, last_updated, False, same),
                               "unchanged")
        new, now = current + 1, instant_text(self._clock())
        self._advance(cur, sql, rtype, rid, current, new, now, digest, False)
        bodies = write_version(cur, sql, write, new, now, method, reindex=current > 0)
        stored = Stored(rtype, rid, new, now, False, bodies, method)
        return WriteResult(stored, "updated" if exists else "created")

    @staticmethod
    def _advance(cur: Any, sql: dict[str, str], rtype: str, rid: str, current: int,
                 new: int, now: str, digest: str | None, deleted: bool) -> None:
        if not advance(cur, sql, rtype, rid, current, new, now, digest, deleted):
            raise PreconditionFailed(f"{rtype}/{rid} changed concurrently; read it again")


@contextmanager
def _one_write(raw: Any) -> Iterator[None]:
    """SQLite, around a bulk load's transaction on connection `raw`: when the store holds no
    resources and no other connection has the file open, write through a rollback journal
    instead of the WAL. In WAL mode every page is written twice, to the WAL and then by the
    checkpoint into the file (100k AEs: a 4.6 s checkpoint after the commit, 15% of the
    load); a rollback journal keeps only the pages the file had before, which for an empty
    store are a few. Atomic all the same: a failed load rolls back from the journal.
    The cost: readers that connect during such a load wait for its commit (in WAL they
    would have read the empty store). The file is put back in WAL mode after the commit;
    should that fail (a reader holds it), the next connection does it (schema._connect).

    Foreign keys are not checked during such a load: each check was a lookup per version
    and body row in an index that outgrows the cache (100k AEs: 0.6 s of the writer's
    CPU), and the bulk writer inserts a resource's row, version and bodies together, in a
    store where nothing else exists to refer or be referred to (tests/test_bulk_load.py
    runs `PRAGMA foreign_key_check` after one)."""
    if raw.execute("SELECT 1 FROM resources LIMIT 1").fetchone() is not None:
        yield
        return
    raw.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or it does nothing
    try:
        with _rollback_journal(raw):
            yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


@contextmanager
def _rollback_journal(raw: Any) -> Iterator[None]:
    try:  # needs the file to itself: fails at once, without waiting, if it is not
        rollback = raw.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
    except sqlite3.OperationalError:
        rollback = False
    if not rollback:
        yield
        return
    # FULL: NORMAL is safe from corruption in WAL mode only.
    raw.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        raw.execute("PRAGMA synchronous=NORMAL")
        try:
            raw.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass


def open_store(url: str | None = None, *, clock: Callable[[], datetime] | None = None
               ) -> SqlStore:
    """The store at `url` (else $FHIR_ADAPTER_DATABASE_URL, else ./fhir-adapter.db), its
    schema created on first use."""
    engine = make_engine(url)
    create_schema(engine)
    return SqlStore(engine, clock=clock)
