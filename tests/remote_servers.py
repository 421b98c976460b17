"""Loopback servers for the remote tests: a real `fhir-adapter serve` process, and a proxy in
front of it that injects faults (429 with Retry-After, 503, answers slower than the client's
timeout, connections dropped before or after the request reached the server) and can stand
in for a SMART Backend Services authorization server (discovery, token endpoint checking the
signed client assertion, bearer tokens required on every FHIR call)."""

from __future__ import annotations

import itertools
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from loopback import StubHandler, free_port, process, serve_command, stub

FAULTS = ("429", "503", "slow", "drop-before", "drop-after")


@contextmanager
def serve(database: str, log: Path, *extra: str) -> Iterator[str]:
    """`fhir-adapter serve` on a free loopback port over `database`; its FHIR base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    with process(serve_command(port, database, "--public-base-url", base, *extra), log,
                 f"{base}/metadata", cwd=log.parent):
        yield base


class Proxy:
    """State of a running proxy: `faults` decides per request (its number from 1, method,
    path) which fault to inject, if any; `log` records (method, path, fault)."""

    def __init__(self, upstream: str, faults: Callable[[int, str, str], str | None],
                 slow: float, smart_key: Any = None, offers: set[str] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.offers = offers  # system interactions the CapabilityStatement keeps (None: all)
        self.bundles: list[str] = []  # Bundle.type of every Bundle POSTed
        self.written: list[list[dict[str, Any]]] = []  # resources of each write, in order
        self.faults = faults
        self.slow = slow
        self.smart_key = smart_key  # the client's public key: SMART auth required when set
        self.tokens: set[str] = set()
        self.assertions: list[dict[str, Any]] = []
        self.log: list[tuple[str, str, str | None]] = []
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        self.base = ""

    def fault_counts(self) -> dict[str, int]:
        return {f: sum(1 for *_, g in self.log if g == f) for f in FAULTS}


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(StubHandler):
        _send = StubHandler.send

        def _drop(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path
            with proxy.lock:
                number = next(proxy.counter)
            fault = proxy.faults(number, self.command, path)
            proxy.log.append((self.command, path, fault))
            if fault == "429":
                return self._send(429, b'{"resourceType":"OperationOutcome"}',
                                  {"Retry-After": "1", "Content-Type": "application/json"})
            if fault == "503":
                return self._send(503, b"unavailable", {"Content-Type": "text/plain"})
            if fault == "drop-before":
                return self._drop()
            if fault == "reject":
                return self._send(400, _json({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "not-supported",
                     "diagnostics": "rejected by the test proxy"}]}),
                    {"Content-Type": "application/fhir+json"})
            if self.command in ("POST", "PUT") and body.startswith(b"{"):
                import json

                sent = json.loads(body)
                if sent.get("resourceType") == "Bundle":
                    proxy.bundles.append(str(sent.get("type")))
                    proxy.written.append([e["resource"] for e in sent.get("entry") or []])
                else:
                    proxy.written.append([sent])
            if proxy.smart_key is not None and self._smart(path, body):
                return None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "content-length", "connection",
                                            "authorization")}
            answer = requests.request(self.command, proxy.upstream + path.removeprefix(
                "/fhir"), data=body or None, headers=headers, timeout=60,
                allow_redirects=False)
            if fault == "drop-after":  # the write happened; its answer is lost
                return self._drop()
            if fault == "slow":  # the write happened; the answer comes after the timeout
                time.sleep(proxy.slow)
            content = answer.content
            if proxy.offers is not None and path.split("?")[0].endswith("/metadata"):
                import json

                statement = json.loads(content)
                for rest in statement.get("rest") or []:
                    rest["interaction"] = [i for i in rest.get("interaction") or []
                                           if i.get("code") in proxy.offers]
                content = _json(statement)
            keep = {k: v for k, v in answer.headers.items()
                    if k.lower() in ("content-type", "location", "etag", "last-modified",
                                     "content-location", "retry-after")}
            return self._send(answer.status_code, content, keep)

        def _smart(self, path: str, body: bytes) -> bool:
            """SMART: answer discovery and token requests; refuse FHIR calls without a
            token it issued (True: answered here)."""
            import jwt

            token_url = f"{proxy.base}/auth/token"
            if path == "/fhir/.well-known/smart-configuration":
                self._send(200, _json({"token_endpoint": token_url,
                                       "grant_types_supported": ["client_credentials"],
                                       "token_endpoint_auth_methods_supported":
                                           ["private_key_jwt"],
                                       "token_endpoint_auth_signing_alg_values_supported":
                                           ["RS384", "ES384"]}),
                           {"Content-Type": "application/json"})
                return True
            if path == "/auth/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                try:
                    claims = jwt.decode(form["client_assertion"], proxy.smart_key,
                                        algorithms=["RS384", "ES384"], audience=token_url)
                    assert form["grant_type"] == "client_credentials"
                    assert form["client_assertion_type"].endswith("jwt-bearer")
                    assert claims["iss"] == claims["sub"] == "push-client"
                except Exception as exc:  # refused: the client must report it
                    self._send(401, _json({"error": "invalid_client",
                                           "error_description": str(exc)}),
                               {"Content-Type": "application/json"})
                    return True
                proxy.assertions.append(claims | {"scope": form.get("scope")})
                token = uuid.uuid4().hex
                proxy.tokens.add(token)
                self._send(200, _json({"access_token": token, "token_type": "bearer",
                                       "expires_in": 300, "scope": form.get("scope")}),
                           {"Content-Type": "application/json"})
                return True
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if given not in proxy.tokens:
                self._send(401, _json({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "login", "diagnostics": "no token"}]}),
                           {"Content-Type": "application/fhir+json"})
                return True
            return False

        do_GET = do_POST = do_PUT = do_DELETE = _any

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up (what the faults provoke) is no error."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _json(data: Any) -> bytes:
    import json

    return json.dumps(data).encode()


@contextmanager
def proxy(upstream: str, faults: Callable[[int, str, str], str | None] = lambda *_: None,
          slow: float = 2.0, smart_key: Any = None, offers: set[str] | None = None
          ) -> Iterator[Proxy]:
    """A proxy on a free loopback port in front of `upstream` (a FHIR base URL); its own
    FHIR base is proxy.base + "/fhir"."""
    state = Proxy(upstream, faults, slow, smart_key, offers)
    with stub(_handler(state), _QuietServer) as state.base:
        yield state


def path_of(url: str) -> str:
    return urlsplit(url).path
