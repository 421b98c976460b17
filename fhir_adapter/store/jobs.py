"""Asynchronous jobs in the database (tables export_jobs, export_files in schema.py), so that
every gateway process on every host sharing the store sees the same jobs: Bulk Data `$export`
(its output files are the job's files) and `$ingest` (its uploads are, until it ends). The
request's "operation" tells them apart (no key: an export, as before ingest jobs moved here).

A job is `queued` at kick-off; a worker claims it with one conditional UPDATE (a queued job,
or a running one whose heartbeat is older than `stale` seconds: its worker died), so two
workers never both win; the owner beats while it runs; it stores the output files and marks
the job `done` in one transaction, only if it still owns it (a job deleted or taken over
meanwhile is not overwritten). A job claimed `max_attempts` times without finishing is
marked `error`: the failure is visible, not retried for ever. A job's files are stored with
it at creation (uploads) or when it is done (output), in the same transaction as its row."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, update

from .schema import export_files, export_jobs

PART = 1 << 20  # bytes of NDJSON per row of export_files


@dataclass(frozen=True)
class Job:
    """One job's row."""

    id: str
    status: str
    request: dict[str, Any]
    created: float
    owner: str | None
    heartbeat: float | None
    attempts: int
    finished: float | None
    result: dict[str, Any] | None


def operation(request: dict[str, Any]) -> str:
    """"export" or "ingest": what a job's request asks for."""
    return str(request.get("operation", "export"))


def _store_files(conn: Connection, job_id: str, files: Mapping[str, Path]) -> None:
    """The files' bytes as rows of export_files, PART bytes a row (one part in memory)."""
    for name, path in files.items():
        with path.open("rb") as data:
            part = 0
            while chunk := data.read(PART):
                conn.execute(insert(export_files).values(job=job_id, name=name, part=part,
                                                         data=chunk))
                part += 1


def _job(row: Any) -> Job:
    return Job(row.id, row.status, json.loads(row.request), row.created, row.owner,
               row.heartbeat, row.attempts, row.finished,
               json.loads(row.result) if row.result else None)


class Jobs:
    """The jobs of one store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, job_id: str, request: dict[str, Any],
               files: Mapping[str, Path] | None = None) -> None:
        """A new queued job, with its input `files` (name -> path) stored alongside: no
        worker can claim it before they are all there."""
        with self.engine.begin() as conn:
            conn.execute(insert(export_jobs).values(
                id=job_id, status="queued", request=json.dumps(request), created=time.time(),
                attempts=0))
            _store_files(conn, job_id, files or {})

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(export_jobs).where(export_jobs.c.id == job_id)).first()
        return None if row is None else _job(row)

    def claim(self, owner: str, stale: float, max_attempts: int) -> Job | None:
        """Take the oldest claimable job (queued, or running with a heartbeat older than
        `stale` seconds); jobs already claimed `max_attempts` times are failed instead."""
        now = time.time()
        claimable = or_(export_jobs.c.status == "queued",
                        and_(export_jobs.c.status == "running",
                             export_jobs.c.heartbeat < now - stale))
        with self.engine.begin() as conn:
            candidates = conn.execute(select(export_jobs.c.id, export_jobs.c.attempts)
                                      .where(claimable).order_by(export_jobs.c.created)
                                      .limit(5)).all()
        for job_id, attempts in candidates:
            with self.engine.begin() as conn:
                if attempts >= max_attempts:
                    failed = conn.execute(update(export_jobs).where(
                        export_jobs.c.id == job_id, claimable,
                        export_jobs.c.attempts == attempts).values(
                        status="error", finished=now, owner=None, result=json.dumps({
                            "message": f"the job was started {attempts} time(s) and its "
                                       "worker stopped each time (a gateway process died "
                                       "mid-job)"})))
                    if failed.rowcount == 1:  # else another worker has just claimed it
                        conn.execute(delete(export_files).where(export_files.c.job == job_id))
                    continue
                won = conn.execute(update(export_jobs).where(
                    export_jobs.c.id == job_id, claimable,
                    export_jobs.c.attempts == attempts).values(
                    status="running", owner=owner, heartbeat=now, attempts=attempts + 1))
            if won.rowcount == 1:
                return self.get(job_id)
        return None

    def beat(self, job_id: str, owner: str) -> bool:
        """Refresh the owner's heartbeat; False when the job is no longer its own."""
        with self.engine.begin() as conn:
            done = conn.execute(update(export_jobs).where(
                export_jobs.c.id == job_id, export_jobs.c.owner == owner,
                export_jobs.c.status == "running").values(heartbeat=time.time()))
        return done.rowcount == 1

    def finish(self, job_id: str, owner: str, files: dict[str, tuple[Path, int]],
               result: dict[str, Any] | None = None) -> bool:
        """Replace the job's files (its uploads) with the output files (name -> (path,
        resources)) and mark the job done with `result` (default: the files' counts), all at
        once and only while `owner` holds it; False (nothing stored) otherwise."""
        if result is None:
            result = {"files": {n: c for n, (_, c) in files.items()}}
        with self.engine.connect() as conn:
            unit = conn.begin()
            done = conn.execute(update(export_jobs).where(
                export_jobs.c.id == job_id, export_jobs.c.owner == owner,
                export_jobs.c.status == "running").values(
                status="done", finished=time.time(), heartbeat=time.time(),
                result=json.dumps(result)))
            if done.rowcount != 1:
                unit.rollback()
                return False
            conn.execute(delete(export_files).where(export_files.c.job == job_id))
            _store_files(conn, job_id, {name: path for name, (path, _) in files.items()})
            unit.commit()
        return True

    def fail(self, job_id: str, owner: str, message: str,
             detail: dict[str, Any] | None = None) -> None:
        """Mark the job failed (result: the message, and `detail`), its files dropped, while
        `owner` holds it."""
        with self.engine.begin() as conn:
            failed = conn.execute(update(export_jobs).where(
                export_jobs.c.id == job_id, export_jobs.c.owner == owner,
                export_jobs.c.status == "running").values(
                status="error", finished=time.time(),
                result=json.dumps({"message": message, **(detail or {})})))
            if failed.rowcount == 1:
                conn.execute(delete(export_files).where(export_files.c.job == job_id))

    def remove(self, job_id: str) -> None:
        """The job and its files (a running job's worker then finds it gone)."""
        with self.engine.begin() as conn:
            conn.execute(delete(export_files).where(export_files.c.job == job_id))
            conn.execute(delete(export_jobs).where(export_jobs.c.id == job_id))

    def remove_finished(self, job_id: str) -> bool:
        """remove() the job if it has ended (done or error); False while it is queued or
        running (its row decides, so no worker can claim it in between)."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(export_jobs).where(
                export_jobs.c.id == job_id, export_jobs.c.finished.is_not(None)))
            if gone.rowcount == 1:
                conn.execute(delete(export_files).where(export_files.c.job == job_id))
        return gone.rowcount == 1

    def sweep(self, retention: float) -> int:
        """Remove the jobs that finished more than `retention` seconds ago."""
        cutoff = time.time() - retention
        with self.engine.begin() as conn:
            old = [r[0] for r in conn.execute(select(export_jobs.c.id).where(
                export_jobs.c.finished.is_not(None), export_jobs.c.finished < cutoff))]
            for job_id in old:
                conn.execute(delete(export_files).where(export_files.c.job == job_id))
                conn.execute(delete(export_jobs).where(export_jobs.c.id == job_id))
        return len(old)

    def has_file(self, job_id: str, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(export_files.c.part).where(
                export_files.c.job == job_id, export_files.c.name == name).limit(1)).first() \
                is not None

    def file_parts(self, job_id: str, name: str) -> Iterator[bytes]:
        """The file's bytes, part by part (one row in memory at a time)."""
        part = 0
        while True:
            with self.engine.connect() as conn:
                row = conn.execute(select(export_files.c.data).where(
                    export_files.c.job == job_id, export_files.c.name == name,
                    export_files.c.part == part)).first()
            if row is None:
                return
            yield bytes(row[0])
            part += 1
