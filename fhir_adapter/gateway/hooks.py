"""Per-request plumbing shared by the Flask routes and the fast path (fastpath.py): request
ids, the access log line and CORS headers. A module of its own so that the gateway's
modules need not import the package that assembles them."""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any

from flask import Response, g, request

log = logging.getLogger("fhir_adapter.gateway.access")

CORS_EXPOSE = "Location, ETag, Last-Modified, Content-Location, X-Request-Id"
_ALLOW_METHODS = "GET, HEAD, POST, PUT, DELETE"  # no PATCH: not supported (issue 18)
_ALLOW_HEADERS = ("Accept, Content-Type, If-Match, If-None-Match, If-None-Exist, Prefer, "
                  "Authorization")


def cors(response: Response, origins: frozenset[str] | None) -> None:
    """CORS headers; `origins` None means any origin ("*")."""
    headers = response.headers
    if origins is None:
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
    headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        headers["Access-Control-Allow-Methods"] = _ALLOW_METHODS
        headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", _ALLOW_HEADERS)
        headers["Access-Control-Max-Age"] = "600"


def parse_origins(setting: Any) -> frozenset[str] | None:
    allowed = str(setting).strip()
    return None if allowed == "*" else frozenset(o.strip() for o in allowed.split(","))


# uuid4's version (4) and variant (RFC 4122) bits, for uuid4_hex.
_UUID4_KEEP = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)
# Random 128-bit numbers from os.urandom, 256 per system call: each call lets the GIL go,
# and a thread of a threaded server then waits to get it back behind the others.
_RANDOM: deque[int] = deque()
os.register_at_fork(after_in_child=_RANDOM.clear)  # workers must not share their parent's


def uuid4_hex() -> str:
    """uuid.uuid4().hex without the UUID object (whose checks cost ~3 us a call) and mostly
    without a system call: request ids and Bundle ids are made on every request."""
    try:
        number = _RANDOM.popleft()  # atomic: threads never get the same one
    except IndexError:
        block = os.urandom(16 * 256)
        _RANDOM.extend(int.from_bytes(block[i:i + 16]) for i in range(16, len(block), 16))
        number = int.from_bytes(block[:16])
    return f"{number & _UUID4_KEEP | _UUID4_SET:032x}"


def start() -> None:
    g.started = time.perf_counter()
    g.request_id = request.headers.get("X-Request-Id") or uuid4_hex()


def finisher(origins: frozenset[str] | None) -> Any:
    """The after-request hook, with the CORS setting parsed once (not per request)."""

    def _finish(response: Response) -> Response:
        cors(response, origins)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        access_log(request.method, request.path, response.status_code, g.get("started"),
                   g.get("request_id", ""))
        return response

    return _finish


def access_log(method: str, path: str, status: int, started: float | None,
               request_id: str) -> None:
    """The access log line of one request (Flask's or the fast path's)."""
    # Path only: bodies and query strings (identifier=..., name=...) may carry PHI.
    if log.isEnabledFor(logging.INFO):
        now = time.perf_counter()
        log.info("%s %s %s %.1fms id=%s", method, path, status,
                 (now - (now if started is None else started)) * 1000, request_id)
