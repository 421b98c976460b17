"""The read side of the store: read, vread, history and search here; _include/_revinclude in
includes.py, export streams in streams.py. Everything returns stored bytes; nothing is
parsed or re-serialised."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, and_, false, func, or_, select

from ..errors import Gone, NotFound
from .base import SearchQuery, SearchResult, Stored
from .fastsearch import Statements, total_from_page
from .fastsearch import fetch as fetch_page
from .fastsearch import statements as fast_statements
from .idle import IdleConnections
from .includes import IncludeReads
from .schema import resource_bodies as body
from .schema import resource_versions as versions
from .schema import resources as res
from .search import plan
from .streams import ExportReads
from .units import as_bytes, body_join, current_at, since_instant

__all__ = ["READ_SQL", "VREAD_SQL", "Reader", "history_statement", "raw_statements",
           "search_statements", "since_instant"]


def history_statement(resource_type: str | None = None, id: str | None = None, *,
                      since: str | None = None, at: str | None = None, count: int = 50,
                      offset: int = 0) -> Any:
    """The versions `Reader.history` reads, newest first."""
    query = select(versions).order_by(versions.c.seq.desc()).limit(count).offset(offset)
    if resource_type:
        query = query.where(versions.c.res_type == resource_type)
    if id:
        query = query.where(versions.c.res_id == id)
    if since:
        query = query.where(versions.c.last_updated >= since_instant(since))
    if at:
        query = query.where(current_at(at))
    return query


def search_statements(query: SearchQuery) -> tuple[Any, Any, tuple[str, ...]]:
    """(count statement, page statement, ignored parameters) of a search."""
    p = plan(query)
    where = [res.c.res_type == query.resource_type, res.c.deleted == false(), *p.where]
    joined = body_join(query.version)
    count = select(func.count()).select_from(joined).where(*where)
    page = (select(res.c.res_id, res.c.version_id, res.c.last_updated, body.c.body)
            .select_from(joined).where(*where).order_by(*p.order_by)
            .limit(query.count).offset(max(query.offset, 0)))
    return count, page, tuple(p.ignored)


# One statement per read: the current row, its version (deleted? when? how?) and one row per
# stored representation (none for a tombstone). Every join is on a primary key / unique index.
READ_SQL = """SELECT r.version_id, v.version_id, v.deleted, v.last_updated, v.method,
 b.fhir_version, b.body FROM resources r
 LEFT JOIN resource_versions v ON v.res_type = r.res_type AND v.res_id = r.res_id
  AND v.version_id = r.version_id
 LEFT JOIN resource_bodies b ON b.res_type = v.res_type AND b.res_id = v.res_id
  AND b.version_id = v.version_id
 WHERE r.res_type = ? AND r.res_id = ?"""
VREAD_SQL = """SELECT v.version_id, v.version_id, v.deleted, v.last_updated, v.method,
 b.fhir_version, b.body FROM resource_versions v
 LEFT JOIN resource_bodies b ON b.res_type = v.res_type AND b.res_id = v.res_id
  AND b.version_id = v.version_id
 WHERE v.res_type = ? AND v.res_id = ? AND v.version_id = ?"""


def raw_statements(dialect: str) -> dict[str, str]:
    """The hot statements in the driver's parameter style (sqlite3: ?, psycopg: %s)."""
    out = {"read": READ_SQL, "vread": VREAD_SQL}
    return out if dialect == "sqlite" else {k: v.replace("?", "%s") for k, v in out.items()}


class Reader(IncludeReads, ExportReads):
    """Read operations over an engine, or over one connection inside a transaction."""

    def __init__(self, engine: Engine, conn: Connection | None = None) -> None:
        super().__init__(engine, conn)
        self._sql = raw_statements(engine.dialect.name)
        self._idle = (IdleConnections(engine) if conn is None and engine.dialect.name == "sqlite"
                      else None)

    def close(self) -> None:
        """Close the idle and the pooled connections (both are opened again on use)."""
        if self._idle is not None:
            self._idle.close()
        self.engine.dispose()

    # -- read, vread -----------------------------------------------------------------------

    @contextmanager
    def _cursor(self, conn: Connection | None) -> Iterator[Any]:
        """A DB-API cursor: on `conn` (inside a unit of work), else on an idle SQLite
        connection or a pooled one, without a transaction of our own. Hot reads skip
        SQLAlchemy's statement building and execution context (measured: 0.7 ms of a 0.75 ms
        read); one statement sees one snapshot, and the pool's reset-on-return ends
        PostgreSQL's implicit transaction."""
        idle = self._idle if conn is None else None
        if idle is not None:
            raw = idle.take()
        else:
            raw = conn.connection if conn is not None else self.engine.raw_connection()
        cur = raw.cursor()
        try:
            yield cur
        finally:
            cur.close()
            if idle is not None:
                idle.give(raw)
            elif conn is None:
                raw.close()  # back to the pool

    def read(self, resource_type: str, id: str) -> Stored:
        """Current version; raises errors.NotFound or errors.Gone (deleted)."""
        return self._read(self._conn, resource_type, id)

    def _read(self, conn: Connection | None, rtype: str, rid: str) -> Stored:
        with self._cursor(conn) as cur:
            cur.execute(self._sql["read"], (rtype, rid))
            return self._stored(rtype, rid, cur.fetchall(), None)

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        """One version; NotFound if there is no such version, Gone if it is a deletion."""
        return self._version(self._conn, resource_type, id, version_id)

    def _version(self, conn: Connection | None, rtype: str, rid: str, vid: int) -> Stored:
        with self._cursor(conn) as cur:
            cur.execute(self._sql["vread"], (rtype, rid, vid))
            return self._stored(rtype, rid, cur.fetchall(), vid)

    @staticmethod
    def _stored(rtype: str, rid: str, rows: list[Any], wanted: int | None) -> Stored:
        """A version from the rows of READ_SQL / VREAD_SQL (one per representation)."""
        if wanted is None and (not rows or not rows[0][0]):
            raise NotFound(f"{rtype}/{rid} is not known")
        if not rows or rows[0][1] is None:
            vid = rows[0][0] if wanted is None else wanted
            raise NotFound(f"{rtype}/{rid} has no version {vid}")
        _, vid, deleted, last_updated, method, _, _ = rows[0]
        if deleted:
            raise Gone(f"{rtype}/{rid} was deleted (version {vid})",
                       headers={"ETag": f'W/"{vid}"'})
        return Stored(rtype, rid, vid, last_updated, False,
                      {r[5]: as_bytes(r[6]) for r in rows if r[5] is not None}, method)

    # -- history -----------------------------------------------------------------------------

    def history(self, resource_type: str | None = None, id: str | None = None, *,
                since: str | None = None, at: str | None = None, count: int = 50,
                offset: int = 0) -> list[Stored]:
        """Versions newest first (instance, type or system history); tombstones included
        (deleted=True, no body). `since`: a FHIR instant/date, inclusive; `at`: only the
        versions current at some moment of that instant/date (units.current_at)."""
        query = history_statement(resource_type, id, since=since, at=at, count=count,
                                  offset=offset)
        with self._unit() as conn:
            rows = conn.execute(query).all()
            keys = [(r.res_type, r.res_id, r.version_id) for r in rows if not r.deleted]
            found: dict[tuple[str, str, int], dict[str, bytes]] = {}
            if keys:
                # One key equality per version, OR'ed: SQLite reads each by the primary key,
                # where a row-value IN list scanned every body (1.1 s a page at 100k AEs).
                for b in conn.execute(select(body).where(or_(*(and_(
                        body.c.res_type == t, body.c.res_id == i, body.c.version_id == v)
                        for t, i, v in keys)))):
                    found.setdefault((b.res_type, b.res_id, b.version_id), {})[
                        b.fhir_version] = as_bytes(b.body)
        return [Stored(r.res_type, r.res_id, r.version_id, r.last_updated, r.deleted,
                       found.get((r.res_type, r.res_id, r.version_id), {}), r.method)
                for r in rows]

    # -- search --------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        """One page of current, non-deleted matches in query.version (each Stored carries
        that version's bytes), in a stable order, with the total unless total='none'."""
        fast = fast_statements(query, self.engine.dialect.name)
        if fast is not None:
            return self._fast_search(self._conn, query, fast)
        with self._unit() as conn:
            return self._search(conn, query)

    def search_rows(self, query: SearchQuery
                    ) -> tuple[list[tuple[str, bytes]], int | None] | None:
        """search() of the common shapes (fastsearch.py) as (id, bytes) pairs, with the total:
        all a searchset Bundle needs, without a Stored per match (~1.3 us each, a tenth of a
        20-match search). None for every other search: ask search()."""
        fast = fast_statements(query, self.engine.dialect.name)
        if fast is None:
            return None
        rows, total = self._page(self._conn, query, fast)
        return [(r[0], as_bytes(r[3])) for r in rows], total

    def _fast_search(self, conn: Connection | None, query: SearchQuery,
                     sql: Statements) -> SearchResult:
        rows, total = self._page(conn, query, sql)
        return SearchResult([Stored(query.resource_type, r[0], r[1], r[2], False,
                                    {query.version: as_bytes(r[3])}) for r in rows], total, ())

    def _page(self, conn: Connection | None, query: SearchQuery, sql: Statements
              ) -> tuple[list[Any], int | None]:
        # Outside a unit of work, SQLite (autocommit) needs BEGIN for the total and the page
        # to come from one snapshot; PostgreSQL's driver opens a transaction by itself.
        with self._cursor(conn) as cur:
            return fetch_page(cur, query, sql, snapshot=conn is None
                                    and self.engine.dialect.name == "sqlite")

    def _search(self, conn: Connection, query: SearchQuery) -> SearchResult:
        fast = fast_statements(query, self.engine.dialect.name)
        if fast is not None:
            return self._fast_search(conn, query, fast)
        count, page, ignored = search_statements(query)
        rows = [] if query.count <= 0 else conn.execute(page).all()
        total = total_from_page(query, len(rows))
        if total is None and query.total != "none":
            total = conn.execute(count).scalar_one()
        matches = [Stored(query.resource_type, r.res_id, r.version_id, r.last_updated, False,
                          {query.version: as_bytes(r.body)}) for r in rows]
        return SearchResult(matches, total, ignored)

