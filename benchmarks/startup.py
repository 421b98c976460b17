"""Start-up: `fhir-adapter --help` wall time against a bare interpreter (`python -c pass`),
and a fresh gunicorn gateway's time to its first response and first-request latency (a read
by id) against the bare-Flask ceiling started the same way: plain, where each worker loads
the app after the master listens, and with `--preload` (the README's production option),
where the master loads it before it listens and the workers fork ready. Medians of a few
repetitions."""

from __future__ import annotations

import json
import statistics
import time

from . import OUT, PYTHON, child_env, cli_command, missing, not_available, result, run_measured
from .datasets import store_for
from .generate import SEARCH_SUBJECT, STUDY_ID
from .servers import CEILING_APP, GATEWAY_APP, Setup, get, gunicorn

NAME = "startup"
MODULES = ("fhir_adapter.cli", "fhir_adapter.gateway", "fhir_adapter.store")


def _median_seconds(cmd: list[str], times: int) -> float:
    runs = []
    for _ in range(times):
        done = run_measured(cmd, env=child_env(), timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-300:]}")
        runs.append(done.seconds)
    return statistics.median(runs)


def _read_path(database: str) -> str:
    """A stored AdverseEvent's URL, found through the store (not through a server)."""
    from fhir_adapter import ids
    from fhir_adapter.store import SearchQuery, open_store

    patient = ids.resource_id("Patient", ids.subject_system(STUDY_ID), SEARCH_SUBJECT)
    store = open_store(database)
    try:
        found = store.search(SearchQuery("AdverseEvent", "R4",
                                          [("subject", f"Patient/{patient}")], count=1))
    finally:
        store.close()
    return f"/fhir/AdverseEvent/{found.matches[0].id}"


def _fresh(app: str, setup: Setup, env: dict[str, str], path: str
           ) -> tuple[float, float, bytes, str]:
    """(seconds from spawn to the first response, ms of that first request from the moment
    the port listened, body, content type). Without --preload gunicorn's master listens
    before its workers have imported the app, so the first request also waits for that."""
    with gunicorn(app, setup, env) as server:
        status, ctype, body = get(server.port, path, timeout=60)
        answered = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
        return answered - server.started, (answered - server.ready) * 1000, body, ctype


def run(quick: bool) -> list[dict]:
    """--help (5 runs, quick 3) and fresh-server first requests (3 servers each, quick 1)."""
    if gone := missing(*MODULES):
        return [not_available("fhir-adapter --help", gone, "s"),
                not_available("first request of a fresh gateway", gone, "ms")]
    reps = 3 if quick else 5
    help_s = _median_seconds([*cli_command(), "--help"], reps)
    bare_s = _median_seconds([PYTHON, "-c", "pass"], reps)
    out = [result("fhir-adapter --help", "s", help_s, baseline="python -c pass",
                  baseline_value=bare_s, note=f"median of {reps}")]
    size, database, note = store_for(10_000, quick, fallback=True)
    path = _read_path(str(database))
    env = {"FHIR_ADAPTER_DATABASE_URL": str(database)}
    for preload in (False, True):
        out += _first_requests(Setup("sync", preload=preload), env, path, size, note,
                               1 if quick else 3)
    return out


def _first_requests(setup: Setup, env: dict[str, str], path: str, size: int, note: str,
                    servers: int) -> list[dict]:
    """The gateway's and the ceiling's fresh servers under `setup`, alternating."""
    ours, bare = [], []
    for _ in range(servers):
        listen, first, body, ctype = _fresh(GATEWAY_APP, setup, env, path)
        ours.append((listen, first))
        (OUT / "ceiling-first.json").write_bytes(body)
        manifest = OUT / "ceiling-first-manifest.json"
        manifest.write_text(json.dumps({path: [str(OUT / "ceiling-first.json"), ctype]}))
        listen, first, _, _ = _fresh(CEILING_APP, setup,
                                     {"FHIR_ADAPTER_BENCH_CEILING": str(manifest)}, path)
        bare.append((listen, first))
    label = f"fresh gateway ({setup.label}, {size:,} AE store)"
    med = statistics.median
    return [
        result(f"{label}: spawn to first response", "s", med(x[0] for x in ours),
               baseline="bare Flask, same gunicorn", baseline_value=med(x[0] for x in bare)),
        result(f"{label}: first request (read by id) once listening", "ms",
               med(x[1] for x in ours),
               baseline="bare Flask first request", baseline_value=med(x[1] for x in bare),
               note=f"median of {len(ours)} fresh servers" + (f"; {note}" if note else "")),
    ]
