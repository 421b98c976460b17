"""The write promise: a write the gateway acknowledged (201 with its Location) survives kill -9
of the worker that wrote it and of the whole server. A real gunicorn (2 sync workers) on
loopback takes creates from 4 clients; one worker is SIGKILLed mid-stream (the master starts
another and the clients go on), then the master and every worker at once, with writes in
flight. The store is then opened afresh: every acknowledged id reads back with the body that
was sent, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from remote_servers import free_port
from store_backends import new_postgres_database

from fhir_adapter.store import open_store

pytestmark = pytest.mark.e2e
CLIENTS = 4
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
AE = {"resourceType": "AdverseEvent", "actuality": "actual",
      "subject": {"reference": "Patient/durable-1"}, "event": {"text": "HEADACHE"}}


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rfind(b")") + 2:].split()[1]) == pid:
                out.append(int(entry))
    return out


def _serve(database: str, log: Path, out: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn, "gunicorn is in the [test] extra"
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": database}
    proc = subprocess.Popen([gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "fhir_adapter.gateway:create_app()"], stdout=out,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}/fhir"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(f"{base}/metadata", timeout=30).ok and len(_children(proc.pid)) == 2:
                return proc, base
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


def _write_until_stopped(base: str, client: int, acknowledged: dict[str, bytes],
                         stop: threading.Event) -> None:
    session = requests.Session()
    n = 0
    while not stop.is_set():
        body = orjson.dumps({**AE, "identifier": {"system": "urn:test:durable",
                                                  "value": f"{client}-{n}"}})
        n += 1
        try:
            answer = session.post(f"{base}/AdverseEvent", data=body, headers=HEADERS,
                                  timeout=30)
        except requests.RequestException:  # the worker died under this request
            session = requests.Session()
            continue
        if answer.status_code == 201:
            rid = answer.headers["Location"].split("/AdverseEvent/", 1)[1].split("/")[0]
            acknowledged[rid] = body


def _acknowledged_writes_survive(database: str, tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        acknowledged = _write_and_kill(database, log, out)
    assert len(acknowledged) > 20
    store = open_store(database)
    try:
        for rid, sent in acknowledged.items():
            stored: dict[str, Any] = orjson.loads(store.read("AdverseEvent", rid).json("R4"))
            assert stored["identifier"] == orjson.loads(sent)["identifier"], rid
    finally:
        store.close()


def _write_and_kill(database: str, log: Path, out: Any) -> dict[str, bytes]:
    proc, base = _serve(database, log, out)
    acknowledged: dict[str, bytes] = {}
    stop = threading.Event()
    clients = [threading.Thread(target=_write_until_stopped,
                                args=(base, n, acknowledged, stop)) for n in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        time.sleep(2)
        os.kill(_children(proc.pid)[0], signal.SIGKILL)  # one worker, mid-stream
        written = len(acknowledged)
        deadline = time.monotonic() + 60
        while len(acknowledged) < written + 20:  # the master replaced it; writes go on
            assert time.monotonic() < deadline, "no writes acknowledged after a worker died"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # the master and both workers, writes in flight
        proc.wait()
    finally:
        stop.set()
        for client in clients:
            client.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return acknowledged


def test_acknowledged_writes_survive_kill_9_on_sqlite(tmp_path: Path) -> None:
    _acknowledged_writes_survive(str(tmp_path / "durable.db"), tmp_path)


@pytest.mark.postgres
def test_acknowledged_writes_survive_kill_9_on_postgresql(tmp_path: Path) -> None:
    with new_postgres_database() as url:
        _acknowledged_writes_survive(url, tmp_path)
