"""The worker that runs the database's jobs (store/jobs.py), Bulk Data `$export` and
asynchronous `$ingest`: one thread per gateway process (started with the app, or by the first
kick-off or status request a forked worker serves), which claims a queued job, or a job whose
worker stopped beating, runs it in a scratch folder (an export builds its files there, an
ingest lays out its uploads), stores the outcome in the database and marks the job done.
Any process of any host sharing the store may run any job; a process that dies mid-job
leaves it to another one (which starts it again), until EXPORT_MAX_ATTEMPTS claims have
failed: then the job reports the failure."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import FhirError
from ..export import export_ndjson
from ..pipeline.compartment import Filters, all_patients, compartment, group_members
from ..store.base import Store
from ..store.jobs import Job, Jobs, operation
from .ingest import run_job as run_ingest

log = logging.getLogger("fhir_adapter.gateway.export")
_WORKERS: dict[tuple[int, int], Worker] = {}
_LOCK = threading.Lock()
IDLE = 120.0  # seconds a worker waits for work before its thread ends


def run_export(store: Store, folder: Path, asked: dict[str, Any]) -> dict[str, tuple[Path, int]]:
    """Write the files of the export `asked` (a job's request) into `folder`."""
    version, kind = asked["version"], asked["kind"]
    types, since = asked.get("types"), asked.get("since")
    if kind in ("group", "patient"):
        filters = Filters.parse(types, asked.get("typeFilter") or [])
        members = (group_members(store, asked["id"], version) if kind == "group"
                   else list(all_patients(store, version)))
        summary = export_ndjson(store, folder, version, since=since,
                                source=compartment(store, version, members, filters, since))
    else:
        summary = export_ndjson(store, folder, version, types=types, since=since,
                                study=asked.get("id") if kind == "study" else None)
    return {path.name: (path, count) for path, count in summary.counts.items()}


class Worker:
    """The job thread of one process for one store."""

    def __init__(self, store: Store, conf: dict[str, Any]) -> None:
        self.store = store
        self.conf = conf
        self.jobs = Jobs(store.engine)  # type: ignore[attr-defined]
        self.stale = float(conf["EXPORT_STALE"])
        self.max_attempts = int(conf["EXPORT_MAX_ATTEMPTS"])
        self.scratch = conf.get("EXPORT_DIR") or None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self.used = time.monotonic()

    def _loop(self) -> None:
        """Claim and run jobs; end after IDLE seconds without a job or an export request
        (the next export request starts the thread again), or when the store is gone."""
        poll = max(min(self.stale / 4, 5.0), 0.2)
        while not self.stopped.is_set() and time.monotonic() - self.used < IDLE:
            try:
                job = self.jobs.claim(self.owner, self.stale, self.max_attempts)
            except Exception:  # the database is away or closed: the next request retries
                log.warning("claiming an export job failed", exc_info=True)
                return
            if job is None:
                self.wake.wait(poll)
                self.wake.clear()
                continue
            self.run(job)
            self.used = time.monotonic()

    def run(self, job: Job) -> None:
        """Run one claimed job to its end (done, error, or no longer ours)."""
        stop = threading.Event()
        beating = threading.Thread(target=self._beat, args=(job.id, stop), daemon=True)
        beating.start()
        if self.scratch:
            Path(self.scratch).mkdir(parents=True, exist_ok=True)
        what = operation(job.request)
        folder = Path(tempfile.mkdtemp(prefix=f"{what}-{job.id}-", dir=self.scratch))
        try:
            if what == "ingest":
                files, result = {}, run_ingest(self.store, self.jobs, job, folder,
                                                     self.conf)
            else:
                files, result = run_export(self.store, folder, job.request), None
            if not self.jobs.finish(job.id, self.owner, files, result):
                log.info("%s %s was deleted or taken over: its output is dropped", what, job.id)
        except Exception as exc:  # the status request reports it
            if not isinstance(exc, FhirError):
                log.exception("%s %s failed", what, job.id)
            message = exc.message if isinstance(exc, FhirError) else \
                f"{type(exc).__name__}: {exc}"
            # The answer a synchronous request would have had: its status and issues.
            detail = ({"status": exc.status, "issues": [i.to_fhir() for i in exc.issues]}
                      if isinstance(exc, FhirError) else None)
            try:
                self.jobs.fail(job.id, self.owner, message, detail)
            except Exception:
                log.exception("%s %s: its failure could not be recorded", what, job.id)
        finally:
            stop.set()
            shutil.rmtree(folder, ignore_errors=True)

    def _beat(self, job_id: str, stop: threading.Event) -> None:
        interval = max(self.stale / 4, 0.1)
        while not stop.wait(interval):
            try:
                if not self.jobs.beat(job_id, self.owner):
                    return
            except Exception:
                log.warning("export %s: heartbeat failed", job_id, exc_info=True)


def ensure_worker(store: Store, conf: dict[str, Any]) -> Worker | None:
    """This process's worker for `store`, started if need be (None: EXPORT_WORKERS is 0)."""
    if not int(conf["EXPORT_WORKERS"]) or not hasattr(store, "engine"):
        return None
    key = (os.getpid(), id(store))  # a forked process starts its own
    with _LOCK:
        worker = _WORKERS.get(key)
        if worker is None or not worker.thread.is_alive():
            worker = _WORKERS[key] = Worker(store, conf)
            worker.thread.start()
        worker.used = time.monotonic()
    return worker


def stop_worker(store: Store) -> None:
    """End this process's job thread for `store` (between jobs) and wait for it a while: a
    store being closed must not be polled any more."""
    with _LOCK:
        worker = _WORKERS.pop((os.getpid(), id(store)), None)
    if worker is not None:
        worker.stopped.set()
        worker.wake.set()
        if worker.thread.is_alive() and worker.thread is not threading.current_thread():
            worker.thread.join(timeout=30)
