"""Bulk export jobs shared by gateway processes through one PostgreSQL: a job kicked off on
one process is run by another's worker and served by any; a worker killed mid-job (SIGKILL,
while its export waits on a table lock the test holds) leaves a job that another process
takes over once the dead one's heartbeat is stale."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from loopback import free_port, process, serve_command
from sqlalchemy import create_engine, text
from store_backends import new_postgres_database

from fhir_adapter.pipeline.load import load_files
from fhir_adapter.store.schema import database_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = "NCT05003921"
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


@contextmanager
def gateway(database: str, log: Path, **settings: str) -> Iterator[tuple[str, Any]]:
    """A `fhir-adapter serve` process with FHIR_ADAPTER_<settings>; (base URL, process)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, **{f"FHIR_ADAPTER_{k}": v for k, v in settings.items()}}
    with process(serve_command(port, database, "--public-base-url", base), log,
                 f"{base}/metadata", env=env) as proc:
        yield base, proc


def job_row(engine: Any, job: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT status, owner, attempts FROM export_jobs "
                                 "WHERE id = :id"), {"id": job}).first()


def finished(status_url: str, timeout: float = 90) -> requests.Response:
    deadline = time.monotonic() + timeout
    while (reply := requests.get(status_url, timeout=30)).status_code == 202:
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.2)
    return reply


def test_jobs_are_shared_and_a_killed_worker_is_taken_over(tmp_path: Path) -> None:
    with ExitStack() as stack:
        database = stack.enter_context(new_postgres_database())
        for kind, name in (("study", f"{SEED}.json"), ("enrollments", f"{SEED}.enrollments.csv"),
                           ("adverse-events", f"{SEED}.adverse-events.csv")):
            load_files(kind, [EXAMPLES / name], database=database,
                       **({} if kind == "study" else {"study": SEED}))
        engine = create_engine(database_url(database))
        stack.callback(engine.dispose)
        web, _ = stack.enter_context(gateway(database, tmp_path / "web.log",
                                             EXPORT_WORKERS="0"))
        doomed, victim = stack.enter_context(gateway(database, tmp_path / "doomed.log",
                                                     EXPORT_STALE="2"))
        with engine.connect() as blocker:
            blocker.execute(text("BEGIN"))
            blocker.execute(text("LOCK TABLE resource_bodies IN ACCESS EXCLUSIVE MODE"))
            kick = requests.get(f"{doomed}/$export?_type=Patient", headers=ASYNC, timeout=30)
            assert kick.status_code == 202
            status = kick.headers["Content-Location"]
            job = status.rsplit("/", 1)[1]
            deadline = time.monotonic() + 30
            while (row := job_row(engine, job)).status != "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert row.owner.split(":")[1] == str(victim.pid) and row.attempts == 1
            os.kill(victim.pid, signal.SIGKILL)  # mid-job: its export waits on the lock
            victim.wait()
            blocker.execute(text("ROLLBACK"))
        # The web-only process reports the job as running, from the database.
        reply = requests.get(f"{web}/$export-status/{job}", timeout=30)
        assert reply.status_code == 202 and "running" in reply.headers["X-Progress"]
        rescuer, helper = stack.enter_context(gateway(database, tmp_path / "rescuer.log",
                                                      EXPORT_STALE="2"))
        done = finished(f"{rescuer}/$export-status/{job}")  # polling starts its worker
        assert done.status_code == 200, done.text
        row = job_row(engine, job)
        assert row.status == "done" and row.attempts == 2
        assert row.owner.split(":")[1] == str(helper.pid)
        # Any process serves the manifest and the files, the web-only one included.
        manifest = requests.get(f"{web}/$export-status/{job}", timeout=30).json()
        (output,) = manifest["output"]
        assert output["type"] == "Patient" and output["count"] == 8
        url = output["url"].replace(doomed, web)
        lines = requests.get(url, timeout=30).content.splitlines()
        assert len(lines) == 8
        # A kick-off on the web-only process is run by another process's worker.
        kick = requests.get(f"{web}/Group/{_cohort()}/$export", headers=ASYNC, timeout=30)
        assert kick.status_code == 202
        later = kick.headers["Content-Location"]
        done = finished(later.replace(web, rescuer))
        assert done.status_code == 200
        assert job_row(engine, later.rsplit("/", 1)[1]).owner.split(":")[1] == str(helper.pid)
        assert requests.get(later, timeout=30).json()["output"]


def _cohort() -> str:
    from fhir_adapter import ids
    from fhir_adapter.mapping.cohort import cohort_id

    return cohort_id(ids.study_resource_id(SEED))
