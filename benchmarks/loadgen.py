"""HTTP load from a second process: wrk when installed, else this bounded Python generator.

    python -m benchmarks.loadgen http://127.0.0.1:PORT/path --connections 8 \
        --requests 20000 --duration 8

The Python generator runs `connections` threads, each with one keep-alive http.client
connection (re-opened when the server closes it, as gunicorn's sync workers do), until
`requests` responses or `duration` seconds, whichever comes first. It prints one JSON object:
requests, seconds, rps, errors (non-2xx or failed), p50/p95/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from . import PYTHON, ROOT, child_env, die_with_parent

ACCEPT = "application/fhir+json"
_WRK_SCRIPT = """
wrk.headers["Accept"] = "ACCEPT"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %f, "errors": %d, ' ..
    '"p50": %f, "p95": %f, "p99": %f}\\n',
    summary.requests, summary.duration / 1e6,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
""".replace("ACCEPT", ACCEPT)


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def in_threads(worker: Callable[[], None], count: int) -> float:
    """Run `worker` in `count` threads at once; the seconds until the last one ended."""
    threads = [threading.Thread(target=worker) for _ in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def exchange(conn: http.client.HTTPConnection, method: str, path: str,
             headers: dict[str, str], body: bytes | None = None
             ) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a keep-alive connection and its whole answer. The connection is closed
    when the server says so or the exchange fails (then OSError / HTTPException propagates):
    the next request() reconnects."""
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        raise
    if response.getheader("Connection", "").lower() == "close":
        conn.close()
    return response, answer


def generate(url: str, connections: int, requests: int, duration: float,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Drive `url` from `connections` threads; latencies of every completed request."""
    sent = {"Accept": ACCEPT, **(headers or {})}
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    left = [requests]
    deadline = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine: list[float] = []
        failed = 0
        while time.perf_counter() < deadline:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            start = time.perf_counter()
            try:
                response, _ = exchange(conn, "GET", target, sent)
            except (OSError, http.client.HTTPException):
                failed += 1
                continue
            failed += response.status >= 300
            mine.append((time.perf_counter() - start) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    seconds = in_threads(worker, connections)
    latencies.sort()
    return {"requests": len(latencies), "seconds": seconds, "errors": errors[0],
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99)}


def drive(url: str, *, connections: int, requests: int, duration: float,
          tool: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the load in a separate process (wrk if installed, unless `tool` says "python");
    `headers` are sent with every request (an Authorization header, say)."""
    use_wrk = tool != "python" and shutil.which("wrk") is not None
    extra = [f"{name}: {value}" for name, value in (headers or {}).items()]
    if use_wrk:
        script = ROOT / "benchmarks" / "out" / ("wrk-report-headers.lua" if extra
                                                else "wrk-report.lua")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("".join(f'wrk.headers["{name}"] = "{value}"\n'
                                  for name, value in (headers or {}).items()) + _WRK_SCRIPT)
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--timeout", "10s", "-s", str(script), url]
    else:
        cmd = [PYTHON, "-m", "benchmarks.loadgen", url, "--connections", str(connections),
               "--requests", str(requests), "--duration", str(duration),
               *(arg for h in extra for arg in ("--header", h))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 3 + 30,
                          env=child_env(), cwd=ROOT, check=False, preexec_fn=die_with_parent)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(("RESULT", "{"))), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"load generator failed: {(done.stderr or done.stdout)[-300:]}")
    report = json.loads(line.removeprefix("RESULT "))
    report["rps"] = report["requests"] / report["seconds"] if report["seconds"] else 0.0
    report["tool"] = "wrk" if use_wrk else "python"
    return report


def main(argv: list[str] | None = None) -> None:
    """Command line of the Python generator (one JSON line on stdout)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args(argv)
    headers = dict(h.split(": ", 1) for h in args.header)
    print(json.dumps(generate(args.url, args.connections, args.requests, args.duration,
                              headers)))


if __name__ == "__main__":
    main()
