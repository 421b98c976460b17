"""Tail latency at 32 connections (issue 19): the gateway's p50 and p99 under gunicorn sync
workers, gthread workers, and gthread workers with --reuse-port, read by id and the 20-hit
search on the 10k store, each server driven by 32 keep-alive connections (wrk, else
loadgen.py). The three servers stay up side by side and rounds alternate between them, so
that the machine's noise hits all three alike.

Figures per server and case: p50 and p99 are the medians of the rounds' own, and the ratio is
the median of the rounds' p99/p50 (target for gthread: <= 5). The note gives every round's
ratio, how the 32 connections were split over the two workers (from /proc, in the middle of
each round: gthread keeps a keep-alive connection on the worker that accepted it, so a
split of 31/1 leaves one core serving 31 clients), the workers' CPU time per request and the
time their threads sat runnable waiting for a core (/proc schedstat: the machine's other
load), and the load average."""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

from . import result, size_label
from .datasets import store_for
from .loadgen import drive
from .servers import (
    GATEWAY_APP,
    Server,
    Setup,
    connections_per_worker,
    get,
    gunicorn,
    scheduler_times,
)

NAME = "serving-tail"
CONNECTIONS = 32
SETUPS = (Setup("sync"), Setup("gthread"), Setup("gthread", reuse_port=True))
TARGET = "ratio <= 5"  # p99 within 5x p50, for the gthread set-ups
KEPT = ("p50", "p99", "rps", "split", "cpu_ms", "queued_ms")  # of each round, in the JSON
ROUNDS = {True: (2, 1.0), False: (5, 2.0)}  # (rounds per server and case, seconds a round)


def _round(server: Server, path: str, seconds: float) -> dict[str, Any]:
    """One load run; the connection split is sampled halfway through it."""
    split: list[int] = []
    sampler = threading.Timer(seconds / 2, lambda: split.extend(
        connections_per_worker(server.process.pid, server.port)))
    cpu, wait = scheduler_times(server.process.pid)
    sampler.start()
    try:
        report = drive(server.base + path, connections=CONNECTIONS,
                       requests=int(40_000 * seconds), duration=seconds)
    finally:
        sampler.cancel()
        sampler.join()
    cpu_after, wait_after = scheduler_times(server.process.pid)
    report["split"] = split
    # Per request: CPU time of the workers, and time their threads sat runnable waiting
    # for a core (the machine's other load): ms.
    done = max(report["requests"], 1)
    report["cpu_ms"] = (cpu_after - cpu) * 1000 / done
    report["queued_ms"] = (wait_after - wait) * 1000 / done
    return report


def _row(setup: Setup, size: int, case: str, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["p99"] / r["p50"] for r in rounds if r["p50"] > 0]
    p50 = statistics.median(r["p50"] for r in rounds)
    p99 = statistics.median(r["p99"] for r in rounds)
    splits = ", ".join("/".join(map(str, r["split"])) or "?" for r in rounds)
    what = "read by id" if case == "read" else "search 20 of"
    note = (f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (medians of {len(rounds)} rounds); p99/p50 "
            f"per round {', '.join(f'{x:.1f}' for x in ratios)}; connections per worker "
            f"{splits}; {statistics.median(r['rps'] for r in rounds):,.0f} req/s; per request "
            f"{statistics.median(r['cpu_ms'] for r in rounds):.2f} ms of worker CPU and "
            f"{statistics.median(r['queued_ms'] for r in rounds):.2f} ms of worker threads "
            "waiting for a core; "
            f"{sum(r['errors'] for r in rounds)} errors; {rounds[0]['tool']}; load average "
            f"{os.getloadavg()[0]:.1f}")
    return result(f"{what} {size_label(size)} AE, {setup.label}, {CONNECTIONS} connections: "
                  "tail", "p99 ms", p99, baseline="its p50", baseline_value=p50,
                  ratio=statistics.median(ratios) if ratios else None,
                  target=TARGET if setup.worker_class == "gthread" else None, note=note,
                  p50=p50, p99=p99, rounds=[{k: r[k] for k in KEPT} for r in rounds])


def run(quick: bool) -> list[dict[str, Any]]:
    """One row per set-up and case (read, search)."""
    from .serving import _paths

    count, seconds = ROUNDS[quick]
    try:
        size, database, note = store_for(10_000, quick)
        env = {"FHIR_ADAPTER_DATABASE_URL": str(database)}
        servers: list[Server] = []
        with gunicorn(GATEWAY_APP, SETUPS[0], env) as a, gunicorn(GATEWAY_APP, SETUPS[1], env) \
                as b, gunicorn(GATEWAY_APP, SETUPS[2], env) as c:
            servers = [a, b, c]
            for server in servers:  # a fresh worker's first answer, on a busy machine: slow
                for _ in range(2 * 2):  # each worker's, most likely
                    get(server.port, "/fhir/metadata", timeout=120)
            paths = _paths(a.port)
            out = []
            for case in ("read", "search"):
                found: list[list[dict[str, Any]]] = [[] for _ in servers]
                for server in servers:  # warm-up: every worker's first requests
                    drive(server.base + paths[case], connections=CONNECTIONS, requests=800,
                          duration=0.5, tool="python")
                for _ in range(count):
                    for i, server in enumerate(servers):
                        found[i].append(_round(server, paths[case], seconds))
                        time.sleep(0.1)
                out += [_row(setup, size, case, rounds)
                        for setup, rounds in zip(SETUPS, found, strict=True)]
        return out
    except Exception as exc:  # noqa: BLE001 - reported as a row, the rest still runs
        return [result(f"read/search 10k AE, {CONNECTIONS} connections: tail", "p99 ms", None,
                       note=f"not available: {exc}")]
