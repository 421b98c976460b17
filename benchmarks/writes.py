"""Writes: single creates, updates, deletes and small transaction Bundles through the gateway,
8 concurrent keep-alive clients each sending one write at a time, every body its own
(benchmarks.writeload), against servers of 2 workers each, all up side by side:

- ours on SQLite and on PostgreSQL (gunicorn, 2 gthread workers of 4 threads as the README's
  production line runs it, every write validated). With sync workers a worker waiting for
  SQLite's write lock, or for PostgreSQL's answer, has nothing else to do: measured side by
  side, gthread gave 2.1-2.2x the creates/s of sync on SQLite;
- the ceiling on each database: the bare Flask app (ceiling_app.py) under the identical
  gunicorn, storing the same bytes in one table (no validation, no index, no history);
- sekmet-fhir 0.1.1 on SQLite when it is installed (`pip install -r
  benchmarks/requirements-peers.txt`: an extra of the benchmarks, never of the package),
  `uvicorn sekmet.main:app_factory --factory --workers 2`, strict inbound validation
  (fhir.resources R4B models), its traffic log off (its own advice for load runs);
- with FHIR_ADAPTER_BENCH_BEFORE=<a checkout of an earlier commit>: ours from that checkout
  too, on a database of its own, for before/after figures measured side by side.

Rounds alternate over the servers, one driven at a time (quick: 1 round of 1 s per
operation, full: 3 of 2 s), so that noise on a shared machine tends to hit every side of a
round; a figure is the median of a side's rounds, a ratio the median of the per-round
ratios. Updates PUT new content to ids the side created; deletes take each created id once
(a round that runs out of ids ends early, and its rate counts the time it ran).
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import OUT, PYTHON, ROOT, child_env, die_with_parent, missing, not_available, result
from .datasets import drop_postgres, fresh_postgres, postgres_server_url
from .servers import CEILING_APP, GATEWAY_APP, Server, Setup, gunicorn, uvicorn
from .writeload import TX_ENTRIES

NAME = "writes"
MODULES = ("fhir_adapter.gateway", "fhir_adapter.store")
CONNECTIONS = 8
WORKERS = 2
ROUNDS = {True: (1, 1.0), False: (3, 2.0)}  # (rounds per operation, seconds per round)
OPS = ("create", "transaction", "update", "delete")
PEER = ("sekmet-fhir", "0.1.1")
TARGET = "ratio >= 3"  # of sekmet-fhir's rate (issue 19)
BEFORE_ENV = "FHIR_ADAPTER_BENCH_BEFORE"
TEMPLATES = ROOT / "tests" / "golden" / "adverse_event" / "cdiscpilot01-ae.r4.expected.json"
DATABASES = ("fhir_adapter_bench_writes", "fhir_adapter_bench_writes_before")
MOST_PER_SECOND = 1000  # bodies prepared per second of a round: more than any side sends
SETUP = Setup("gthread", WORKERS)  # ours, before and the ceiling alike


@dataclass
class Side:
    """One server under test: its rounds per operation and the ids it created."""

    key: str  # ours | ceiling | sekmet | before, with -pg on PostgreSQL
    label: str
    server: Server
    base: str  # FHIR base URL
    ids: list[str] = field(default_factory=list)
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rate(self, op: str) -> float | None:
        found = self.rounds.get(op)
        return statistics.median(r["rps"] for r in found) if found else None

    def median_round(self, op: str) -> dict[str, Any]:
        found = sorted(self.rounds[op], key=lambda r: r["rps"])
        return found[(len(found) - 1) // 2]


def templates() -> list[dict[str, Any]]:
    """The AdverseEvents of the CDISC pilot's golden file, without their ids."""
    found = json.loads(TEMPLATES.read_text("utf-8"))
    out = [{k: v for k, v in r.items() if k != "id"} for r in found
           if r.get("resourceType") == "AdverseEvent"]
    if not out:
        raise RuntimeError(f"no AdverseEvent in {TEMPLATES}")
    return out


def bodies(shapes: list[dict[str, Any]], tag: str, count: int) -> list[dict[str, Any]]:
    """`count` AdverseEvents, each with an identifier of its own (no two bodies alike)."""
    out = []
    for n in range(count):
        body = copy.deepcopy(shapes[n % len(shapes)])
        body["identifier"] = {"system": "urn:fhir-adapter:benchmark:writes",
                              "value": f"{tag}-{n}"}
        out.append(body)
    return out


def peer_installed() -> str | None:
    """The installed sekmet-fhir version, or None."""
    if importlib.util.find_spec("sekmet") is None:
        return None
    try:
        return importlib.metadata.version(PEER[0])
    except importlib.metadata.PackageNotFoundError:
        return None


def _postgres_ok() -> bool:
    if importlib.util.find_spec("psycopg") is None:
        return False
    try:
        import psycopg

        with psycopg.connect(postgres_server_url().replace("+psycopg", ""), connect_timeout=3):
            return True
    except Exception:
        return False


def _drive(side: Side, op: str, work: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One round of `op` on `side` from a separate process; the ids it created are kept."""
    folder = OUT / "writes"
    folder.mkdir(parents=True, exist_ok=True)
    work_file, ids_file = folder / f"work-{side.key}.json", folder / f"ids-{side.key}.txt"
    work_file.write_text(json.dumps(work))
    ids_file.unlink(missing_ok=True)
    cmd = [PYTHON, "-m", "benchmarks.writeload", side.base, op, "--work", str(work_file),
           "--connections", str(CONNECTIONS), "--duration", str(seconds),
           "--ids-out", str(ids_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 5 + 120,
                          env=child_env(), cwd=ROOT, check=False, preexec_fn=die_with_parent)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"write load on {side.label} failed: {done.stderr[-400:]}")
    report = json.loads(line)
    if op == "delete":  # each id deleted once: those sent are gone
        side.ids = side.ids[:len(side.ids) - report["sent"]]
    if ids_file.exists():
        side.ids += [i for i in ids_file.read_text().split() if i]
    return report


def _work(side: Side, op: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """What one round of `op` sends to `side`: bodies, and for updates/deletes its ids."""
    if op in ("create", "transaction"):
        return {"bodies": batch}
    if not side.ids:  # the round sends nothing: a rate of 0, which the note shows
        return {"ids": []}
    if op == "update":
        ids = (side.ids * (len(batch) // len(side.ids) + 1))[:len(batch)]
        return {"bodies": batch, "ids": ids}
    return {"ids": side.ids[::-1]}  # newest first; _drive keeps those not sent


def _alternate(sides: list[Side], quick: bool) -> None:
    """Every operation: a warm-up, then alternating rounds over the sides."""
    count, seconds = ROUNDS[quick]
    shapes = templates()
    per_round = int(MOST_PER_SECOND * seconds)
    for side in sides:  # warm-up: first requests, and ids for the first update round
        _drive(side, "create", {"bodies": bodies(shapes, f"warm-{side.key}", 200)}, 0.5)
    for op in OPS:
        for n in range(count):
            if op == "delete":  # enough ids for the round, created untimed
                for side in sides:
                    _top_up(side, shapes, 2 * seconds * max(
                        side.rate(o) or 0 for o in ("create", "update", "delete")))
            size = per_round * (TX_ENTRIES if op == "transaction" else 1)
            batch = bodies(shapes, f"{op}-{n}", size)
            for side in sides:
                report = _drive(side, op, _work(side, op, batch), seconds)
                side.rounds.setdefault(op, []).append(report)
                print(f"  writes: {op} round {n + 1}/{count}, {side.label}: "
                      f"{report['rps']:.0f}/s, p99 {report['p99']:.0f} ms, "
                      f"{report['errors']} errors", file=sys.stderr, flush=True)


def _top_up(side: Side, shapes: list[dict[str, Any]], wanted: float) -> None:
    """Create (untimed) until `side` holds `wanted` ids to delete, or 2 minutes passed."""
    for attempt in range(120):
        short = int(wanted) - len(side.ids)
        if short <= 0:
            return
        batch = bodies(shapes, f"top-{side.key}-{attempt}", short)
        _drive(side, "create", {"bodies": batch}, 1.0)


def _ratios(ours: Side, other: Side, op: str) -> list[float]:
    return [a["rps"] / b["rps"] for a, b in zip(ours.rounds[op], other.rounds[op],
                                                 strict=True) if b["rps"]]


def _latency(side: Side, op: str) -> str:
    r = side.median_round(op)
    text = f"{side.key} p50/p99 {r['p50']:.1f}/{r['p99']:.1f} ms"
    errors = sum(x["errors"] for x in side.rounds[op])
    if errors:
        first = next(x["first_error"] for x in side.rounds[op] if x["errors"])
        text += f", {errors} errors (first: {str(first)[:120]})"
    if any(x["exhausted"] for x in side.rounds[op]) and op == "delete":
        text += ", ran out of ids to delete in some round (rate over the time it ran)"
    return text


def _rows(sides: dict[str, Side], db: str, suffix: str, peer: str | None,
          quick: bool) -> list[dict[str, Any]]:
    ours, ceiling = sides[f"ours{suffix}"], sides[f"ceiling{suffix}"]
    sekmet, before = sides.get("sekmet"), sides.get(f"before{suffix}")
    count, seconds = ROUNDS[quick]
    how = (f"{SETUP.label}; {CONNECTIONS} clients, {count} alternating rounds of "
           f"{seconds:g} s, median round; ratio = median of per-round ratios")
    out = []
    for op in OPS:
        label = f"{op} AE, ours on {db}" + (f" ({TX_ENTRIES} creates a Bundle)"
                                           if op == "transaction" else "")
        unit = "Bundles/s" if op == "transaction" else f"{op}s/s"
        ratios = _ratios(ours, ceiling, op)
        out.append(result(f"{label} vs ceiling", unit, ours.rate(op),
                          baseline=f"bare Flask + {db}, no validation", target=None,
                          baseline_value=ceiling.rate(op), ratio=statistics.median(ratios),
                          note=f"{_latency(ours, op)}; {_latency(ceiling, op)}; "
                               f"round ratios {min(ratios):.2f}-{max(ratios):.2f}; {how}",
                          p99=ours.median_round(op)["p99"]))
        if sekmet is None:
            out.append(result(f"{label} vs {PEER[0]} {PEER[1]}", unit, ours.rate(op),
                              target=TARGET, note=peer or f"{PEER[0]} not installed "
                              "(pip install -r benchmarks/requirements-peers.txt)"))
        else:
            ratios = _ratios(ours, sekmet, op)
            out.append(result(f"{label} vs {PEER[0]} {peer} (SQLite)", unit, ours.rate(op),
                              baseline=f"{PEER[0]}, 2 uvicorn workers, strict validation",
                              baseline_value=sekmet.rate(op), target=TARGET,
                              ratio=statistics.median(ratios),
                              note=f"{_latency(ours, op)}; {_latency(sekmet, op)}; round "
                                   f"ratios {min(ratios):.2f}-{max(ratios):.2f}; {how}",
                              p99=ours.median_round(op)["p99"],
                              peer_p99=sekmet.median_round(op)["p99"]))
        if before is not None:
            ratios = _ratios(ours, before, op)
            out.append(result(f"{label} vs before", unit, ours.rate(op),
                              baseline=f"ours at {os.environ.get(BEFORE_ENV)}",
                              baseline_value=before.rate(op), ratio=statistics.median(ratios),
                              note=f"{_latency(ours, op)}; {_latency(before, op)}; round "
                                   f"ratios {min(ratios):.2f}-{max(ratios):.2f}; {how}"))
    return out


def _sekmet_env(folder: Path) -> dict[str, str]:
    """A settings file for sekmet-fhir: a SQLite file of its own, strict validation."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.yaml").write_text(
        f"db_path: {folder / 'sekmet.db'}\ndata_dir: {folder / 'data'}\n"
        "validation:\n  inbound: strict\nlog_inbound: false\nsimulator:\n  enabled: false\n")
    return {"SEKMET_CONFIG": str(folder / "settings.yaml")}


def run(quick: bool) -> list[dict]:
    """Creates, transactions, updates and deletes on SQLite and PostgreSQL."""
    if gone := missing(*MODULES):
        return [not_available("writes AE", gone, "creates/s")]
    folder = OUT / "writes"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    peer = peer_installed()
    before = Path(os.environ[BEFORE_ENV]) if os.environ.get(BEFORE_ENV) else None
    postgres = _postgres_ok()
    setup = SETUP
    sides: dict[str, Side] = {}
    with ExitStack() as stack:
        def add(key: str, label: str, server: Server) -> None:
            sides[key] = Side(key, label, server, f"{server.base}/fhir")

        add("ours", "ours, SQLite", stack.enter_context(gunicorn(
            GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": str(folder / "ours.db")})))
        add("ceiling", "ceiling, SQLite", stack.enter_context(gunicorn(
            CEILING_APP, setup, {"FHIR_ADAPTER_BENCH_CEILING_DB": str(folder / "ceiling.db")})))
        if peer is not None:
            env = _sekmet_env(folder / "sekmet")
            add("sekmet", f"{PEER[0]} {peer}", stack.enter_context(uvicorn(
                "sekmet.main:app_factory", WORKERS, env, cwd=folder / "sekmet")))
        if before is not None:
            add("before", "ours before, SQLite", stack.enter_context(gunicorn(
                GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": str(folder / "before.db"),
                                     "PYTHONPATH": str(before)}, cwd=before)))
        if postgres:
            url = fresh_postgres(DATABASES[0])
            stack.callback(drop_postgres, DATABASES[0])
            add("ours-pg", "ours, PostgreSQL", stack.enter_context(gunicorn(
                GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": url})))
            add("ceiling-pg", "ceiling, PostgreSQL", stack.enter_context(gunicorn(
                CEILING_APP, setup, {"FHIR_ADAPTER_BENCH_CEILING_DB": url})))
            if before is not None:
                old = fresh_postgres(DATABASES[1])
                stack.callback(drop_postgres, DATABASES[1])
                add("before-pg", "ours before, PostgreSQL", stack.enter_context(gunicorn(
                    GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": old,
                                         "PYTHONPATH": str(before)}, cwd=before)))
        _alternate(list(sides.values()), quick)
    out = _rows(sides, "SQLite", "", peer, quick)
    if postgres:
        out += _rows(sides, "PostgreSQL", "-pg", peer, quick)
    else:
        out.append(result("writes AE, ours on PostgreSQL", "creates/s", None,
                          note=f"not available: no PostgreSQL at {postgres_server_url()}"))
    return out
