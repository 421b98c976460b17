"""The audit trail: one row per request and per token issued or refused (table
audit_events), served as read-only FHIR AuditEvent resources.

Rows are queued in memory and written in batches by one thread per process (every 0.5 s,
or sooner once 2000 wait), so a request pays for a list append, not for a database write.
A search of AuditEvent writes this process's queue first; rows queued by another worker
process appear within the flush interval. Rows left in the queue are written at exit.
"""

from __future__ import annotations

import atexit
import base64
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from .tables import audit_events, create_tables

log = logging.getLogger("fhir_adapter.audit")
FLUSH_INTERVAL = 0.5
_BATCH = 2000
_COLUMNS = ("id", "recorded", "kind", "client_id", "method", "path", "query",
            "resource_type", "resource_id", "status", "detail", "request_id")
CLIENT_SYSTEM = "urn:fhir-adapter:client-id"
_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_OUTCOME = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"


class AuditLog:
    """The audit trail of one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine)
        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()
        self._pid = 0
        self._prefix = ""
        self._counter = itertools.count(1)
        self._closed = False
        atexit.register(self.close)

    def close(self) -> None:
        """Write what is queued and stop writing (before the store's engine is disposed:
        a later write would open connections nobody closes)."""
        if not self._closed:
            self.flush()
            self._closed = True

    def record(self, kind: str, client_id: str, method: str, path: str, query: str,
               resource_type: str, resource_id: str, status: int, detail: str,
               request_id: str) -> None:
        """Queue one audit row (written within FLUSH_INTERVAL). Cheap on purpose: an id from
        a per-process prefix and a counter (no system call), the time as a float (formatted
        by the writer)."""
        if self._pid != os.getpid():  # first row in this process (or after a fork)
            self._start()
        self._queue.append((f"{self._prefix}{next(self._counter):x}", time.time(), kind,
                            client_id, method, path, query, resource_type, resource_id,
                            status, detail[:2000], request_id[:128]))
        if len(self._queue) >= _BATCH:
            self._wake.set()

    def _start(self) -> None:
        with self._write_lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._prefix = os.urandom(8).hex()  # ids unique across processes and hosts
            self._counter = itertools.count(1)
            threading.Thread(target=self._loop, name="audit-writer", daemon=True).start()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep the writer alive; rows stay queued
                log.exception("writing audit events failed; retrying")
                time.sleep(1)

    def flush(self) -> None:
        """Write every queued row now (rows are put back if the write fails)."""
        with self._write_lock:
            if self._closed:
                return
            rows = []
            while self._queue and len(rows) < 5000:
                rows.append(self._queue.popleft())
            while rows:
                try:
                    self._write(rows)
                except Exception:
                    self._queue.extendleft(reversed(rows))
                    raise
                rows = []
                while self._queue and len(rows) < 5000:
                    rows.append(self._queue.popleft())

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        """One INSERT of many rows through the driver (no per-row SQLAlchemy work)."""
        marks = ("?" if self.engine.dialect.paramstyle == "qmark" else "%s",) * len(_COLUMNS)
        sql = (f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join(marks)})")
        second, text = -1, ""
        params = []
        for row in rows:
            at = row[1]
            if int(at) != second:  # one strftime a second, not a row
                second = int(at)
                text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            params.append((row[0], f"{text}.{int((at - second) * 1000):03d}Z", *row[2:]))
        with self.engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
            conn.exec_driver_sql(sql, params)

    def read(self, id: str) -> dict[str, Any] | None:
        """One row by id, or None."""
        self.flush()
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_events).where(audit_events.c.id == id)
                               ).mappings().first()
        return dict(row) if row else None

    def search(self, q: AuditQuery) -> tuple[list[dict[str, Any]], int]:
        """(rows of one page, newest first; the total count) for a query."""
        from sqlalchemy import func

        self.flush()
        t = audit_events.c
        where = []
        if q.clients:
            where.append(t.client_id.in_(q.clients))
        if q.resource_types:
            where.append(t.resource_type.in_(q.resource_types))
        if q.entities:
            where.append((t.resource_type + "/" + t.resource_id).in_(q.entities))
        if q.outcomes:
            where.append(_outcome_column().in_(q.outcomes))
        if q.kinds:
            where.append(t.kind.in_(q.kinds))
        for op, value in q.dates:
            where.append({"ge": t.recorded >= value, "gt": t.recorded > value,
                          "le": t.recorded <= value, "lt": t.recorded < value}[op])
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(audit_events).where(*where)
                                 ).scalar_one()
            rows = conn.execute(select(audit_events).where(*where)
                                .order_by(t.seq.desc()).limit(q.count).offset(q.offset)
                                ).mappings().all()
        return [dict(r) for r in rows], total


def _outcome_column() -> Any:
    from sqlalchemy import case

    s = audit_events.c.status
    return case((s < 400, "0"), (s < 500, "4"), else_="8")


@dataclass
class AuditQuery:
    """An AuditEvent search, its parameters already checked."""

    clients: Sequence[str] = ()
    resource_types: Sequence[str] = ()
    entities: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    kinds: Sequence[str] = ()
    dates: Sequence[tuple[str, str]] = ()
    count: int = 20
    offset: int = 0


def _outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def _interaction(row: dict[str, Any]) -> tuple[str, str]:
    """(restful-interaction code, AuditEvent action) of a request row."""
    method, path, rid = row["method"], row["path"], row["resource_id"]
    if "$" in path:
        return "operation", "E"
    if "/_history" in path:
        return ("vread" if rid and not path.endswith("/_history") else "history-instance"
                if rid else "history-type" if row["resource_type"] else "history-system"), "R"
    if method in ("GET", "HEAD"):
        return ("read", "R") if rid else ("search-type", "E") if row["resource_type"] else (
            "search-system", "E")
    if method == "POST":
        if row["resource_type"] and path.endswith("/_search"):
            return "search-type", "E"
        return ("create", "C") if row["resource_type"] else ("transaction", "E")
    if method in ("PUT", "PATCH"):
        return ("update" if method == "PUT" else "patch"), "U"
    if method == "DELETE":
        return "delete", "D"
    return "capabilities", "R"


def to_fhir(row: dict[str, Any], version: str) -> dict[str, Any]:
    """An audit row as an R4 or R5 AuditEvent."""
    token = row["kind"] == "token"
    kind = ({"system": _DCM, "code": "110114", "display": "User Authentication"} if token
            else {"system": _TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"})
    code, action = ("token", "E") if token else _interaction(row)
    sub = None if token else {"system": _INTERACTION, "code": code}
    who: dict[str, Any] = ({"identifier": {"system": CLIENT_SYSTEM, "value": row["client_id"]}}
                           if row["client_id"] else {"display": "no authenticated client"})
    agent = {"who": who, "requestor": True}
    entity: list[dict[str, Any]] = []
    if row["resource_type"]:
        what = ({"reference": f"{row['resource_type']}/{row['resource_id']}"}
                if row["resource_id"] else {"type": row["resource_type"],
                                            "display": row["resource_type"]})
        item: dict[str, Any] = {"what": what}
        if row["query"]:
            item["query"] = base64.b64encode(row["query"].encode()).decode()
        entity.append(item)
    detail = (f"{row['method']} {row['path']}{'?' + row['query'] if row['query'] else ''} "
              f"-> {row['status']}" + (f": {row['detail']}" if row["detail"] else ""))
    out: dict[str, Any] = {"resourceType": "AuditEvent", "id": row["id"]}
    if version == "R4":
        out["type"] = kind
        if sub:
            out["subtype"] = [sub]
        out.update(action=action, recorded=row["recorded"], outcome=_outcome(row["status"]),
                   outcomeDesc=detail, agent=[agent],
                   source={"observer": {"display": "fhir-adapter"}})
    else:
        out["category"] = [{"coding": [kind]}]
        out["code"] = {"coding": [sub or kind]}
        out.update(action=action, recorded=row["recorded"],
                   outcome={"code": {"system": _OUTCOME, "code": _outcome(row["status"])},
                            "detail": [{"text": detail}]},
                   agent=[agent], source={"observer": {"display": "fhir-adapter"}})
    if entity:
        out["entity"] = entity
    return out
