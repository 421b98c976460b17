"""What the store's read modules share: the unit of work (a connection of its own, or the
one of an enclosing transaction), the join of current rows with their bodies, and bytes
as the drivers give them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, exists, select

from ..errors import BadRequest
from .base import FhirVersion
from .schema import resource_bodies as body
from .schema import resource_versions as versions
from .schema import resources as res
from .values import date_range, epoch_to_instant
from .writers import queue_for


def body_join(version: FhirVersion | None = None) -> Any:
    """Current rows joined with their bodies (only `version`'s, when given)."""
    on = [body.c.res_type == res.c.res_type, body.c.res_id == res.c.res_id,
          body.c.version_id == res.c.version_id]
    if version:
        on.append(body.c.fhir_version == version)
    return res.join(body, and_(*on))


def since_instant(since: str) -> str:
    """The stored-instant text from which a FHIR instant/date `since` counts (inclusive)."""
    try:
        return epoch_to_instant(date_range(since)[0])
    except ValueError as exc:
        raise BadRequest(f"invalid _since {since!r}") from exc


def current_at(at: str) -> ColumnElement[bool]:
    """History `_at`: the versions current at some moment of the period `at` covers (an
    instant: that moment; a date: that day): written at or before its end, and not replaced
    by a later version at or before its start. The later versions are found by the
    (res_type, res_id, version_id) index."""
    try:
        low, high = date_range(at)
    except ValueError as exc:
        raise BadRequest(f"invalid _at {at!r}: a FHIR date, dateTime or instant (no "
                         "prefix)") from exc
    later = versions.alias("later")
    replaced = exists(select(later.c.seq).where(
        later.c.res_type == versions.c.res_type, later.c.res_id == versions.c.res_id,
        later.c.version_id > versions.c.version_id,
        later.c.last_updated <= epoch_to_instant(low)))
    return and_(versions.c.last_updated <= epoch_to_instant(high), ~replaced)


def as_bytes(value: Any) -> bytes:
    """A body column's value as bytes (PostgreSQL's driver gives memoryview)."""
    return value if isinstance(value, bytes) else bytes(value)


class Units:
    """A reader's engine, and the connection of the transaction it reads inside (if any)."""

    def __init__(self, engine: Engine, conn: Connection | None = None) -> None:
        self.engine = engine
        self._conn = conn
        # SQLite: write units queue for their turn (writers.py); PostgreSQL's writers run
        # at once and their commits share WAL flushes.
        self._writers = (queue_for(engine.url.database) if engine.dialect.name == "sqlite"
                         else None)

    @contextmanager
    def _unit(self, write: bool = False) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
            return
        queue = self._writers if write else None
        with self.engine.connect() as conn:
            if queue is None:
                with conn.begin():
                    yield conn
                return
            conn.execution_options(fhir_write=True)  # SQLite: BEGIN IMMEDIATE
            with queue.turn(), conn.begin():  # the turn is given back after the commit
                yield conn
