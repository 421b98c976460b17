"""Per-client rate limits: a token bucket per client id, per worker process (a gateway with
N workers lets a client through at up to N times the rate; set RATE_LIMIT accordingly)."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """`rate` requests a second per client, with bursts of up to `burst`."""

    def __init__(self, per_minute: int, burst: int | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(per_minute // 6, 10))
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds to wait (Retry-After)."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            if len(self._buckets) > 100_000:  # bounded: forget everyone, refill buckets
                self._buckets.clear()
        return math.ceil((1 - tokens) / self.rate) if self.rate > 0 else 60.0
