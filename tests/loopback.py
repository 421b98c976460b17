"""Loopback servers of the end-to-end tests, started and stopped one way: a server process
(`fhir-adapter serve`, gunicorn) that is ready once a URL answers 200, an in-process
threaded HTTP stub (a fault-injecting proxy, a replayed remote API), and an in-process WSGI
app (werkzeug's server), each on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(port: int, database: str, *extra: str) -> list[str]:
    """`fhir-adapter serve` on 127.0.0.1:`port` over `database`."""
    return [sys.executable, "-m", "fhir_adapter", "serve", "--host", "127.0.0.1", "--port",
            str(port), "--database", database, *extra]


@contextmanager
def process(command: list[str], log: Path, ready: str, *, env: Mapping[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 120) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` (output to `log`) until the block ends; yields it once GET `ready`
    answers 200 (a failure with the log's tail if it exits or does not answer in time).
    Stopped with SIGTERM, then SIGKILL after 15 s."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=None if env is None else dict(env), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"server exited {proc.returncode}:\n"
                                         + log.read_text(errors="replace")[-3000:])
                try:
                    if requests.get(ready, timeout=30).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise AssertionError("server did not answer:\n"
                                         + log.read_text(errors="replace")[-3000:])
                time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class StubHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler with `send` (status, body, headers + Content-Length)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
             ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def _in_thread(server: Any) -> Iterator[str]:
    """`server` (socketserver-like) serving from a thread; yields http://127.0.0.1:PORT."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def stub(handler: type[BaseHTTPRequestHandler],
         server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> Iterator[str]:
    """`handler` served from a thread on a free loopback port; yields http://127.0.0.1:PORT."""
    server = server_class(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with _in_thread(server) as root:
        yield root


@contextmanager
def wsgi(app: Any) -> Iterator[str]:
    """A WSGI app (a gateway made by create_app) on werkzeug's threaded server, from a thread
    on a free loopback port; yields http://127.0.0.1:PORT."""
    from werkzeug.serving import make_server

    with _in_thread(make_server("127.0.0.1", 0, app, threaded=True)) as root:
        yield root
