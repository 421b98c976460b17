"""One resource's write (create, update, delete) as plain SQL on the DB-API cursor, for the
gateway's single writes and the entries of a transaction Bundle.

Two things made a single create slow, measured with 8 clients on 2 gunicorn workers:
- work done while holding SQLite's one write lock: each create indexed and serialised both
  FHIR versions inside its unit of work, so the other worker waited that long too (and, on a
  busy machine, as long as the holder was descheduled);
- SQLAlchemy's statement building and execution context around ~10 statements a write
  (~0.1 ms each; bulk.py measured the same for loads).
So `ready()` does everything that does not need the database (bytes, index rows, digest)
before the unit begins, and the unit runs prepared statements, built once per dialect (on
PostgreSQL those that need no answer in one pipeline). The
outcomes are those the module docstring of sql.py describes (row lock first, version check
by row count, ON CONFLICT for a new id).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import Any

from .bulk import Prepared, Rep, add_index_rows, insert_sql, stored_body
from .bulk import statements as bulk_statements
from .indexing import COLUMNS, EXTRACTORS

_RES = "version_id, deleted, content_hash, last_updated"


@cache
def statements(dialect: str) -> dict[str, str]:
    """The single-write statements in the driver's parameter style (sqlite3 ?, psycopg %s):
    the bulk module's, with INSERTs where a bulk load of PostgreSQL uses COPY."""
    p = "%s" if dialect == "postgresql" else "?"
    lock = " FOR UPDATE" if dialect == "postgresql" else ""  # SQLite: BEGIN IMMEDIATE
    shared = bulk_statements(dialect)
    out = {
        "row": f"SELECT {_RES} FROM resources WHERE res_type = {p} AND res_id = {p}{lock}",
        # A new id goes in at its first version; a concurrent creator of the same id makes
        # this insert nothing (row count 0) and the writer then reads that row, locked.
        "new": f"INSERT INTO resources (res_type, res_id, version_id, deleted, last_updated, "
               f"content_hash) VALUES ({p}, {p}, 1, {p}, {p}, {p}) "
               "ON CONFLICT (res_type, res_id) DO NOTHING",
        "advance": shared["update_res"],
        "version": insert_sql("resource_versions", p),
        "body": insert_sql("resource_bodies", p),
    }
    for table in EXTRACTORS:
        out[f"index_{table}"] = insert_sql(f"idx_{table}", p)
        out[f"unindex_{table}"] = shared[f"unindex_{table}"]
    return out


class Ready:
    """A write made ready outside the unit of work: representations, digest, index rows
    (full-width tuples per table)."""

    __slots__ = ("item", "index")

    def __init__(self, item: Prepared) -> None:
        self.item = item
        index: dict[str, list[tuple]] = {table: [] for table in EXTRACTORS}
        for rep in item.reps.values():
            add_index_rows(index, rep)
        self.index = {table: [_wide(row, len(COLUMNS[table])) for row in rows]
                      for table, rows in index.items() if rows}


def _wide(row: tuple, width: int) -> tuple:
    return row if len(row) == width else (*row, *([None] * (width - len(row))))


def ready(rtype: str, rid: str, reps: dict[str, Rep]) -> Ready:
    """What a write of these representations needs that the database does not decide."""
    return Ready(Prepared(rtype, rid, reps))


def current_row(cur: Any, sql: dict[str, str], rtype: str, rid: str) -> tuple | None:
    """(version_id, deleted, content_hash, last_updated) of the row, locked; None if none."""
    cur.execute(sql["row"], (rtype, rid))
    return cur.fetchone()


def insert_new(cur: Any, sql: dict[str, str], rtype: str, rid: str, deleted: bool,
               now: str, digest: str | None) -> bool:
    """Insert the row of a new id at version 1; False when another writer has it now."""
    cur.execute(sql["new"], (rtype, rid, deleted, now, digest))
    return cur.rowcount == 1


def advance(cur: Any, sql: dict[str, str], rtype: str, rid: str, current: int, new: int,
            now: str, digest: str | None, deleted: bool) -> bool:
    """Move the row from version `current` to `new`; False when it was not at `current`."""
    cur.execute(sql["advance"], (new, deleted, now, digest, rtype, rid, current))
    return cur.rowcount == 1


def write_version(cur: Any, sql: dict[str, str], write: Ready, new: int, now: str,
                  method: str, reindex: bool) -> dict[str, bytes]:
    """The version's history row, bodies and index rows (the old ones removed first when
    `reindex`); returns the stored bytes per FHIR version."""
    item = write.item
    key = (item.rtype, item.rid)
    bodies = {v: stored_body(rep, new, now) for v, rep in item.reps.items()}
    with _batch(cur):
        cur.execute(sql["version"], (*key, new, now, method, False))
        cur.executemany(sql["body"], [(*key, new, v, b) for v, b in bodies.items()])
        if reindex:
            unindex(cur, sql, *key)
        for table, rows in write.index.items():
            if len(rows) == 1:
                cur.execute(sql[f"index_{table}"], rows[0])
            else:
                cur.executemany(sql[f"index_{table}"], rows)
    return bodies


def write_deletion(cur: Any, sql: dict[str, str], rtype: str, rid: str, new: int,
                   now: str) -> None:
    """The history row of a deletion; the index rows go."""
    with _batch(cur):
        cur.execute(sql["version"], (rtype, rid, new, now, "DELETE", True))
        unindex(cur, sql, rtype, rid)


def _batch(cur: Any) -> AbstractContextManager[Any]:
    """PostgreSQL: the statements of the block sent in one pipeline, one round trip for all
    (none of them needs another's result; an error still raises, at the block's end at the
    latest). ~8 statements a create, each a round trip to another process, which a busy
    machine does not schedule at once. SQLite runs in process: nothing to batch."""
    pipeline = getattr(getattr(cur, "connection", None), "pipeline", None)
    return pipeline() if pipeline is not None else nullcontext()


def unindex(cur: Any, sql: dict[str, str], rtype: str, rid: str) -> None:
    """Remove every index row of the resource."""
    for table in EXTRACTORS:
        cur.execute(sql[f"unindex_{table}"], (rtype, rid))
