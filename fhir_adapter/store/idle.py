"""SQLite connections for the hot reads, kept outside SQLAlchemy's pool.

Taking one is a list pop (atomic under the GIL) instead of a pool checkout, whose events and
reset-on-return cost ~25 us a request, as much as the read's own SQL. Last in, first out, so
a threaded server keeps reusing as many as it has threads. SQLite only: a local file has no
server that could drop a connection, so nothing needs the pool's pre-ping.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine


class IdleConnections:
    """DB-API connections of `engine` not in use; `take` one, `give` it back when done."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.free: list[Any] = []
        self.pid = os.getpid()

    def take(self) -> Any:
        """An idle connection, or a new one (opened with the engine's PRAGMAs)."""
        if self.pid != os.getpid():  # a forked child must not share its parent's connections
            self.free, self.pid = [], os.getpid()
        try:
            return self.free.pop()
        except IndexError:
            fairy = self.engine.raw_connection()
            raw = fairy.driver_connection
            fairy.detach()  # ours from now on: the pool forgets it
            return raw

    def give(self, raw: Any) -> None:
        """Back to the idle list, any transaction an error left open ended first."""
        if raw.in_transaction:
            raw.rollback()
        self.free.append(raw)

    def close(self) -> None:
        """Close the idle connections (those in use go back to a fresh list)."""
        free, self.free = self.free, []
        for raw in free:
            raw.close()
