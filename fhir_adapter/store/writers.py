"""One SQLite writer at a time, queued by the kernel instead of SQLite's busy handler.

SQLite lets one transaction write at a time. A write unit that finds the lock taken gets
SQLITE_BUSY, and the busy handler sleeps and retries: 1, 2, 5, 10 ... up to 100 ms per try,
however soon the lock is free. Measured with 8 clients creating through 2 gunicorn workers:
most of a create's ~15 ms of wall time (for well under 1 ms of CPU work per write) and a p99
in the hundreds of ms were those sleeps, strace showing clock_nanosleep of ~5 ms beside each
failed lock. So write units of this process queue on a threading lock, and processes on an
exclusive flock() of a file beside the database (`<database>-writer`): a waiter is woken the
moment the writer before it releases, and BEGIN IMMEDIATE then finds the lock free.

The queue is advisory: SQLite's own locks still decide. A writer outside it (a bulk load, the
sqlite3 shell) is waited for by the busy handler, as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_QUEUES: dict[str, WriterQueue] = {}
_GUARD = threading.Lock()


class WriterQueue:
    """The queue of one database file's writers: a thread lock, then the file lock."""

    def __init__(self, path: str | None) -> None:
        self.path = f"{path}-writer" if path else None
        self.thread_lock = threading.Lock()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the writer's turn for the block (other threads and processes wait). The
        lock file is opened per turn (~10 us): no descriptor to leak, or to share with a
        forked child, whose flock() would then be its parent's lock."""
        with self.thread_lock:
            if self.path is None:
                yield
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock


def queue_for(database: str | None) -> WriterQueue:
    """The queue of SQLite database file `database` (None or ':memory:': threads only)."""
    key = os.path.abspath(database) if database and database != ":memory:" else ""
    with _GUARD:
        found = _QUEUES.get(key)
        if found is None:
            found = _QUEUES[key] = WriterQueue(key or None)
        return found
