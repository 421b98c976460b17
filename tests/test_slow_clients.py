"""The production recipe keeps serving while 200 slow clients hold connections (issue 18):
gunicorn gthread on loopback, without the reverse proxy (the worst case), 200 connections
that send half a request line and then nothing; other clients' reads must still be answered.
Bounded: 200 sockets, 20 reads, a 60 s deadline (the machine may be busy: no timing asserts
beyond that bound)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import requests
from test_e2e_clients import running

SLOW = 200


def recipe(port: int) -> list[str]:
    """The README's gunicorn line, with threads above the slow connections: without a proxy
    each slow connection holds a thread until it completes or --timeout passes, and the
    connections need not spread evenly over the workers (one may take them all)."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    return [str(gunicorn), "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", "2", "--threads", "256", "--timeout", "60", "--keep-alive", "5",
            "--limit-request-line", "8190", "fhir_adapter.gateway:create_app()"]


@pytest.mark.e2e
def test_other_clients_are_served_while_200_slow_clients_hold_connections(tmp_path) -> None:
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": f"sqlite:///{tmp_path / 'fhir.db'}",
           "FHIR_ADAPTER_EXPORT_DIR": str(tmp_path / "exports")}
    with running(recipe, env, tmp_path / "gunicorn.log") as base:
        port = int(base.split(":")[2].split("/")[0])
        slow = []
        try:
            for _ in range(SLOW):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(b"GET /fhir/metadata HT")  # and then nothing
                slow.append(sock)
            with requests.Session() as session:
                for n in range(20):
                    answer = session.get(f"{base}/Patient?_count=1", timeout=60)
                    assert answer.status_code == 200, (n, answer.text[:300])
                long_url = session.get(f"{base}/Patient?name={'x' * 8100}", timeout=60)
                assert long_url.status_code == 414
                assert long_url.json()["resourceType"] == "OperationOutcome"
        finally:
            for sock in slow:
                sock.close()
