"""Benchmarks of fhir-adapter: each figure beside a baseline measured in the same run.

`python -m benchmarks [--quick] [--only NAME] [--json PATH]` (see README.md). Each benchmark
module exposes NAME and run(quick) -> list of result rows (dicts made by `result`). These
helpers are what the modules share: result rows, timing, child processes with their peak RSS,
free ports, and the check for modules another issue has not delivered yet.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("FHIR_ADAPTER_BENCH_OUT", ROOT / "benchmarks" / "out"))
PYTHON = sys.executable
# The full run's largest generated data set (for PostgreSQL loads too unless capped) and the
# time one load may take; `python -m benchmarks --top-size N --postgres-top-size N
# --load-budget S` changes them (RESULTS.md says when it did).
settings = {"top_size": 1_000_000, "postgres_top_size": None, "load_budget": 420.0}
_TARGET = re.compile(r"^\s*(ratio|value)\s*(>=|<=)\s*([0-9.]+)\s*$")


def result(case: str, metric: str, value: float | None, *, baseline: str | None = None,
           baseline_value: float | None = None, target: str | None = None,
           note: str = "", **extra: Any) -> dict[str, Any]:
    """One table row. ratio = value / baseline_value; `target` is "ratio >= 0.9" or
    "value >= 5000" (or <=), and `met` says whether this run reached it (None: unknown)."""
    row: dict[str, Any] = {"case": case, "metric": metric, "value": value,
                           "baseline": baseline, "baseline_value": baseline_value,
                           "ratio": None, "target": target, "met": None, "note": note, **extra}
    return finish(row)


def finish(row: dict[str, Any]) -> dict[str, Any]:
    """Fill in ratio and met where the row has what they need (rows of other modules too)."""
    value, base = row.get("value"), row.get("baseline_value")
    if row.get("ratio") is None and _number(value) and _number(base) and base:
        row["ratio"] = value / base
    target = row.get("target")
    if row.get("met") is None and target and (m := _TARGET.match(str(target))):
        subject = row.get("ratio") if m[1] == "ratio" else value
        if _number(subject):
            bound = float(m[3])
            row["met"] = subject >= bound if m[2] == ">=" else subject <= bound
    return row


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def not_available(case: str, missing: str, metric: str = "", target: str | None = None) -> dict:
    """The row of a figure that cannot be measured yet: says which module is missing."""
    return result(case, metric, None, target=target, note=f"not available: {missing} missing")


def missing(*modules: str) -> str | None:
    """The first of `modules` that does not import (absent or broken), else None."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
        except Exception as exc:  # a module being written may fail in any way at import
            return f"{name} ({type(exc).__name__}: {exc})"
    return None


def rate(func: Callable[[], int], *, min_seconds: float = 0.0) -> tuple[float, int, float]:
    """Run `func` (returns how many items it processed) until `min_seconds` have passed;
    returns (items per second, items, seconds)."""
    items, start = 0, time.perf_counter()
    while True:
        items += func()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return items / elapsed, items, elapsed


@dataclass
class Finished:
    """A child process that ran to its end: exit code, wall time, peak RSS, output, and the
    CPU time (user + system) of it and of the descendants it waited for."""

    returncode: int
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str
    cpu_seconds: float = 0.0


def run_measured(cmd: Sequence[str], *, env: dict[str, str] | None = None,
                 timeout: float = 3600, cwd: Path | None = None) -> Finished:
    """Run `cmd`, measuring its wall time and its own peak RSS (wait4's ru_maxrss of that one
    child, so the harness' memory is not counted). Output goes to temporary files."""
    OUT.mkdir(parents=True, exist_ok=True)
    with (open(OUT / ".child.out", "w+b") as out, open(OUT / ".child.err", "w+b") as err):
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=cwd or ROOT,
                                preexec_fn=die_with_parent)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        out.seek(0)
        err.seek(0)
        return Finished(proc.returncode, seconds, usage.ru_maxrss / 1024,
                        out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                        usage.ru_utime + usage.ru_stime)


def die_with_parent() -> None:
    """preexec_fn of every child: the kernel sends it SIGTERM when the harness dies (killed
    by a timeout, say), so no gunicorn or load outlives the run that started it (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def cli_command() -> list[str]:
    """How to start `fhir-adapter`: the installed entry point beside this interpreter."""
    script = Path(PYTHON).parent / "fhir-adapter"
    return [str(script)] if script.exists() else [PYTHON, "-m", "fhir_adapter.cli"]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: this one, the project importable, and `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def size_label(n: int) -> str:
    """10000 -> '10k', 1000000 -> '1M'."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)
