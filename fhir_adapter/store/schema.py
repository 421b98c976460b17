"""Tables of the store, one definition for SQLite and PostgreSQL, and the engine set-up.

resources          one row per logical resource: current version, tombstone flag, content hash
resource_versions  one row per version (history): when, how (POST/PUT/DELETE)
resource_bodies    canonical JSON bytes per version and FHIR version, served verbatim
                   (bytea, not JSONB: JSONB would reorder keys and rewrite decimals)
locks              named rows that serialise conditional writes (If-None-Exist)
export_jobs, export_files   Bulk Data $export jobs and their output (store/jobs.py)
idx_*              search index of current versions, one table per parameter type, each row
                   keyed by (res_type, res_id, fhir_version, param, grp)
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import weakref
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import Connection, make_url

from ..errors import FhirError

metadata = MetaData()

# Byte-order comparison on PostgreSQL too, so prefix ranges and instant text sort as in SQLite.
TEXT_C = Text().with_variant(Text(collation="C"), "postgresql")
KEY = String(64).with_variant(String(64, collation="C"), "postgresql")
SEQ = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

# Foreign keys are checked at commit. Checked per row as rows arrive, PostgreSQL plans the
# check once, while a fresh table is empty, on the (res_type, last_updated) index: a bulk
# load into a new database then became quadratic (10k AEs: 56 s, 8 s deferred).
DEFERRED = {"deferrable": True, "initially": "DEFERRED"}

resources = Table(
    "resources", metadata,
    Column("res_type", KEY, primary_key=True),
    Column("res_id", KEY, primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("last_updated", TEXT_C, nullable=False),
    Column("content_hash", String(64)),
    Index("ix_resources_type_updated", "res_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("res_type", KEY, nullable=False),
    Column("res_id", KEY, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", TEXT_C, nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False),
    ForeignKeyConstraint(["res_type", "res_id"], ["resources.res_type", "resources.res_id"],
                         **DEFERRED),
    Index("ux_versions", "res_type", "res_id", "version_id", unique=True),
    Index("ix_versions_updated", "last_updated"),
    Index("ix_versions_type_updated", "res_type", "last_updated"),
)

resource_bodies = Table(
    "resource_bodies", metadata,
    Column("res_type", KEY, primary_key=True),
    Column("res_id", KEY, primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("fhir_version", String(2), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    ForeignKeyConstraint(["res_type", "res_id", "version_id"],
                         ["resource_versions.res_type", "resource_versions.res_id",
                          "resource_versions.version_id"], **DEFERRED),
)

locks = Table("locks", metadata, Column("name", String(64), primary_key=True))

# Bulk Data $export jobs (store/jobs.py): any gateway process on any host sharing the store
# claims a queued job, or one whose worker stopped beating; the output lives here too, so any
# of them serves the files.
export_jobs = Table(
    "export_jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(12), nullable=False),  # queued | running | done | error
    Column("request", Text, nullable=False),  # JSON: what was asked
    Column("created", Float, nullable=False),  # epoch seconds
    Column("owner", String(200)),  # host:pid:thread of the worker running it
    Column("heartbeat", Float),
    Column("attempts", Integer, nullable=False),
    Column("finished", Float),
    Column("result", Text),  # JSON: counts per file, or the error
    Index("ix_export_jobs_status", "status", "created"),
)
export_files = Table(
    "export_files", metadata,
    Column("job", String(32), primary_key=True),
    Column("name", String(80), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)


def _index_table(name: str, *columns: Column, search: tuple[tuple[str, ...], ...],
                 partial: tuple[tuple[str, ...], ...] = ()) -> Table:
    table = Table(
        f"idx_{name}", metadata,
        Column("res_type", KEY, nullable=False),
        Column("res_id", KEY, nullable=False),
        Column("fhir_version", String(2), nullable=False),
        Column("param", KEY, nullable=False),
        Column("grp", Integer, nullable=False),
        *columns,
    )
    # By resource: re-indexing, :missing, sorting, _include. By value: the searches.
    Index(f"ix_{name}_res", table.c.res_type, table.c.res_id, table.c.fhir_version,
          table.c.param)
    for n, cols in enumerate(search):
        where = {}
        if cols in partial:  # searched by equality only: rows without that value need no entry
            present = table.c[cols[0]].is_not(None)
            where = {"sqlite_where": present, "postgresql_where": present}
        Index(f"ix_{name}_v{n}", table.c.fhir_version, table.c.res_type, table.c.param,
              *(table.c[c] for c in cols), **where)
    return table


index_tables = {
    "token": _index_table("token", Column("system", TEXT_C), Column("code", TEXT_C),
                          Column("text", Text), search=(("code", "system"), ("system",)),
                          partial=(("code", "system"),)),  # `system IS NULL` uses v1
    "string": _index_table("string", Column("prefix", TEXT_C), Column("norm", Text),
                           Column("exact", Text), search=(("prefix",),)),
    "date": _index_table("date", Column("low", BigInteger), Column("high", BigInteger),
                         search=(("low",), ("high",))),
    "reference": _index_table("reference", Column("target_type", KEY),
                              Column("target_id", KEY), Column("url", TEXT_C),
                              search=(("target_id", "target_type"), ("url",)),
                              partial=(("url",),)),
    "number": _index_table("number", Column("value", Float), search=(("value",),)),
    "quantity": _index_table("quantity", Column("low", Float), Column("high", Float),
                             Column("system", TEXT_C), Column("code", TEXT_C),
                             Column("unit", Text), search=(("code", "low"), ("low",))),
}

DEFAULT_URL = "sqlite:///fhir-adapter.db"
ENV_URL = "FHIR_ADAPTER_DATABASE_URL"


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else $FHIR_ADAPTER_DATABASE_URL, else fhir-adapter.db in
    the working directory. A bare path means a SQLite file; postgresql:// means psycopg 3."""
    url = url or os.environ.get(ENV_URL) or DEFAULT_URL
    if "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None) -> Engine:
    """An engine with the settings the store relies on (see _sqlite_setup), which a forked
    child does not share with its parent (_forked)."""
    url = database_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        _sqlite_setup(engine)
    else:
        if importlib.util.find_spec("psycopg") is None:  # an extra: the default install is light
            raise FhirError("a PostgreSQL database needs the [postgres] extra: "
                            "pip install 'fhir-adapter[postgres]'")
        engine = create_engine(url, pool_pre_ping=True)
    _ENGINES.add(engine)
    return engine


# Engines alive in this process. A process forked after using one (gunicorn --preload, whose
# master opens the store before it forks the workers) would otherwise check out its parent's
# pooled connections: one PostgreSQL session or SQLite handle used from two processes.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


_INHERITED: list[Any] = []


def _forked() -> None:
    """In a forked child: a new, empty pool for every engine. The parent's pools are kept
    (in _INHERITED), so that their connections are neither used nor closed here: closing
    one from the child is a use of its SQLite handle too."""
    for engine in list(_ENGINES):
        _INHERITED.append(engine.pool)
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forked)


# Page size of new SQLite files. 8 KiB: a 100k-AE load 6% faster than with 4 KiB (fewer
# pages to split, sort and copy); reads by id and searches measured the same. 16 KiB loaded
# 9% faster but read 20% slower (each body read pulls a whole page).
SQLITE_PAGE_SIZE = 8192


def _sqlite_setup(engine: Engine) -> None:
    """WAL (readers never block the writer), foreign keys, a busy timeout, and BEGIN
    IMMEDIATE for write units: a write transaction takes the write lock before it reads, so
    check-then-write sequences (If-Match, If-None-Exist) cannot interleave."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # pysqlite's own BEGIN handling is replaced below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # no effect on an existing file
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            # A bulk load into an empty store holds the file in rollback-journal mode until
            # it commits (SqlStore.transaction(bulk=True)); this connection reads in that
            # mode meanwhile (waiting while the load writes), and the next one switches.
            if "locked" not in str(exc):
                raise
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        write = conn.get_execution_options().get("fhir_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create_schema(engine: Engine) -> None:
    """Create every table and index that does not exist yet (idempotent)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            tables = {r[0] for r in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables >= set(metadata.tables):
            # Nothing to create: no write lock either, which a store that another process
            # is loading would make this wait for (and fail after the busy timeout).
            return
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":  # two processes starting at once: one creates
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        metadata.create_all(conn, checkfirst=True)
        if conn.dialect.name == "postgresql":
            _defer_foreign_keys(conn)


def _defer_foreign_keys(conn: Connection) -> None:
    """Databases made before the keys were deferred: defer them now (SQLite cannot alter a
    constraint; it checks a key per row by its index, which is not the slow case there)."""
    found = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' "
        "AND NOT condeferrable AND conrelid IN ('resource_versions'::regclass, "
        "'resource_bodies'::regclass)").fetchall()
    for table, name in found:
        conn.exec_driver_sql(f'ALTER TABLE {table} ALTER CONSTRAINT "{name}" '
                             "DEFERRABLE INITIALLY DEFERRED")
