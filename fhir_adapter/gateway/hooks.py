"""Per-request plumbing shared by the Flask routes, the fast path (fastpath.py) and the guard
(security.py): request ids and the access log line. A module of its own so that the
gateway's modules need not import the package that assembles them."""

from __future__ import annotations

import logging
import os
import time
from collections import deque

from flask import g, request

log = logging.getLogger("fhir_adapter.gateway.access")

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
    """Flask's before-request hook: the request id the guard (security.py) chose; a test
    client calling Flask directly has none."""
    g.request_id = request.environ.get("fhir_adapter.request_id") or uuid4_hex()


def access_log(method: str, path: str, status: int, started: float | None,
               request_id: str) -> None:
    """The access log line of one request (Flask's or the fast path's)."""
    # Path only: bodies and query strings (identifier=..., name=...) may carry PHI.
    if log.isEnabledFor(logging.INFO):
        now = time.perf_counter()
        log.info("%s %s %s %.1fms id=%s", method, path, status,
                 (now - (now if started is None else started)) * 1000, request_id)
