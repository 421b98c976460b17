"""The framework ceiling: a bare Flask app that answers each benchmarked URL with the bytes
the gateway returned for it, and nothing else (no store, no negotiation, no headers beyond
Content-Type). Served by the identical gunicorn set-up, it is the fastest the gateway could
be on this machine, so gateway req/s divided by ceiling req/s is what the gateway's own work
costs.

    FHIR_ADAPTER_BENCH_CEILING=manifest.json gunicorn "benchmarks.ceiling_app:create_app()"

The manifest maps a path with its query string to [body file, content type].

Writes (the `writes` benchmark): with FHIR_ADAPTER_BENCH_CEILING_DB set to a SQLite path or a
postgresql:// URL, the app also takes POST/PUT/DELETE of [base]/<type>[/<id>] and POST of a
transaction Bundle to [base], and stores the request's bytes as they came in one table (id,
version, bytes): no validation, no index, no history; one transaction per request, committed
before the answer, on the same durability settings as the store (SQLite: WAL, synchronous
NORMAL; PostgreSQL: its defaults). It answers with the bytes it stored.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, request

ENV = "FHIR_ADAPTER_BENCH_CEILING"
DB_ENV = "FHIR_ADAPTER_BENCH_CEILING_DB"
FHIR = "application/fhir+json"
TABLE = "ceiling_writes"


def create_app(manifest: str | None = None) -> Flask:
    """The bare app; `manifest` (default: $FHIR_ADAPTER_BENCH_CEILING) names the responses."""
    app = Flask(__name__)
    source = manifest or os.environ.get(ENV)
    entries = json.loads(Path(source).read_text("utf-8")) if source else {}
    bodies = {url: (Path(file).read_bytes(), ctype) for url, (file, ctype) in entries.items()}

    @app.get("/<path:_path>")
    def serve(_path: str) -> Response:
        found = bodies.get(request.full_path.rstrip("?"))
        if found is None:
            return Response(b"not in the manifest", status=404, content_type="text/plain")
        return Response(found[0], content_type=found[1])

    if os.environ.get(DB_ENV):
        _writes(app, _database(os.environ[DB_ENV]))
    return app


def _writes(app: Flask, unit: Callable[[], Any]) -> None:
    """The write routes: each request one transaction of plain statements."""

    @app.post("/fhir/<rtype>")
    def create(rtype: str) -> Response:
        rid, body = str(uuid.uuid4()), request.get_data()
        with unit() as db:
            db.execute(f"INSERT INTO {TABLE} (id, version, body) VALUES (?, 1, ?)", (rid, body))
        return Response(body, 201, {"Location": f"/fhir/{rtype}/{rid}/_history/1"},
                        content_type=FHIR)

    @app.put("/fhir/<rtype>/<rid>")
    def update(rtype: str, rid: str) -> Response:
        body = request.get_data()
        with unit() as db:
            db.execute(f"INSERT INTO {TABLE} (id, version, body) VALUES (?, 1, ?) ON CONFLICT "
                       "(id) DO UPDATE SET version = excluded.version + 1, body = excluded.body",
                       (rid, body))
        return Response(body, 200, content_type=FHIR)

    @app.delete("/fhir/<rtype>/<rid>")
    def delete(rtype: str, rid: str) -> Response:
        with unit() as db:
            db.execute(f"DELETE FROM {TABLE} WHERE id = ?", (rid,))
        return Response(b'{"resourceType":"OperationOutcome"}', 200, content_type=FHIR)

    @app.post("/fhir")
    def transaction() -> Response:
        entries = orjson.loads(request.get_data()).get("entry", [])
        answers = []
        with unit() as db:
            for entry in entries:
                rid, body = str(uuid.uuid4()), orjson.dumps(entry["resource"])
                db.execute(f"INSERT INTO {TABLE} (id, version, body) VALUES (?, 1, ?)",
                           (rid, body))
                answers.append({"response": {"status": "201 Created",
                                             "location": f"AdverseEvent/{rid}/_history/1"}})
        return Response(orjson.dumps({"resourceType": "Bundle", "type": "transaction-response",
                                      "entry": answers}), 200, content_type=FHIR)


def _database(target: str) -> Callable[[], Any]:
    """A context manager factory: one committed transaction on this process's connection."""
    if target.startswith(("postgresql", "postgres://")):
        return _postgres("postgresql://" + target.split("://", 1)[1])
    local = threading.local()

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False,
                               timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, "
                     "version INTEGER NOT NULL, body BLOB NOT NULL)")
        return conn

    @contextmanager
    def unit() -> Iterator[sqlite3.Connection]:
        conn = getattr(local, "conn", None) or connect()
        local.conn = conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    return unit


def _postgres(url: str) -> Callable[[], Any]:
    import psycopg

    local = threading.local()

    class Cursor:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def execute(self, sql: str, params: tuple[Any, ...]) -> None:
            self.conn.execute(sql.replace("?", "%s"), params)

    @contextmanager
    def unit() -> Iterator[Cursor]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(url)
            with conn.transaction():  # one of the workers creates it
                conn.execute("SELECT pg_advisory_xact_lock(4242019)")
                conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, "
                             "version INTEGER NOT NULL, body BYTEA NOT NULL)")
        with conn.transaction():
            yield Cursor(conn)

    return unit
