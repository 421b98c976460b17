"""Load: `fhir-adapter load adverse-events` of generated SDTM AE files into SQLite and
PostgreSQL, each run a fresh child process on a fresh database: resources/s and the child's
own peak RSS. Baselines from the same run: `fhir-adapter map adverse-events --ndjson` of the
same file (the mapping alone, in the same CLI: what storing adds) and, for memory, the peak
RSS of the smallest load (memory must stay flat as the file grows).

Each load after the first is skipped, saying so, when the rate just measured projects it
past the time budget (a slow store would otherwise eat the whole run).

On a shared machine the wall-clock rate says how much CPU the load was given as much as how
fast it is, so each load also reports its CPU: the seconds of user + system time of the CLI
and its mapping processes (and, for a local PostgreSQL, of the server backend that served
the load, sampled from /proc), the AEs per CPU-second, and the cores it actually obtained
(CPU seconds / wall seconds). 5,000 AEs/s on 2 cores needs 2,500 AEs per CPU-second.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from . import (
    child_env,
    cli_command,
    missing,
    not_available,
    result,
    run_measured,
    settings,
    size_label,
)
from .datasets import (
    DATA,
    INTERVENTION,
    QUICK_LOAD_BUDGET,
    adopt_sqlite,
    ae_csv,
    drop_postgres,
    fresh_postgres,
    load_command,
    postgres_server_url,
)
from .generate import STUDY_ID

NAME = "load"
MODULES = ("fhir_adapter.cli", "fhir_adapter.pipeline.load", "fhir_adapter.store",
           "fhir_adapter.commands.store", "fhir_adapter.commands.adverse_events")
_CREATED = re.compile(r"(\d+) created, (\d+) updated, (\d+) unchanged")


def _stored(stdout: str) -> int | None:
    found = _CREATED.findall(stdout)
    return sum(int(n) for n in found[-1]) if found else None


class ServerCpu:
    """The CPU seconds (user + system) of the local PostgreSQL backends connected to
    `database` while the block runs, sampled from /proc every 0.1 s (a backend's last
    tenth of a second before it exits is lost). 0 when none is visible (a remote server)."""

    def __init__(self, database: str) -> None:
        self._needle = f" {database} ".encode()
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> ServerCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self._last.values())

    def _poll(self) -> None:
        while True:
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                        cmd = fh.read()
                    if not cmd.startswith(b"postgres: ") or self._needle not in cmd + b" ":
                        continue
                    with open(f"/proc/{entry.name}/stat", "rb") as fh:
                        fields = fh.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                # utime, stime: fields 14 and 15 of stat, 12 and 13 after "pid (comm) "
                self._last[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self._tick
            if self._stop.wait(0.1):
                return


def _map_rate(csv: Path, rows: int, timeout: float) -> tuple[float, float]:
    """Rows/s and rows per CPU-second of `fhir-adapter map adverse-events --ndjson` on the
    same file (no store; one process, one FHIR version)."""
    out = DATA / "map-baseline.ndjson"
    done = run_measured([*cli_command(), "map", "adverse-events", str(csv), "--ndjson",
                         "-o", str(out), "--study", STUDY_ID, "--intervention", INTERVENTION],
                        env=child_env(), timeout=timeout)
    out.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"map adverse-events failed: {done.stderr.strip()[-300:]}")
    return rows / done.seconds, rows / done.cpu_seconds if done.cpu_seconds else 0.0


def _backend(backend: str, sizes: list[int], budget: float) -> list[dict]:
    rows_out: list[dict] = []
    baseline_rate: float | None = None
    baseline_cpu = 0.0
    # A name of this run's own: another run on the same server (a colleague's harness)
    # drops and recreates the default benchmark database.
    pg_name = f"fhir_adapter_bench_load_{os.getpid()}"
    first_rss: tuple[int, float] | None = None
    last_rate: float | None = None
    for size in sizes:
        case = f"load AE {size_label(size)} -> {backend}"
        csv = ae_csv(size)
        if last_rate and size / last_rate > budget:
            note = (f"skipped: {size / last_rate:,.0f} s projected at the {last_rate:,.0f}/s "
                    f"just measured, over the {budget:.0f} s budget of one load")
            rows_out.append(result(case, "resources/s", None, note=note))
            continue
        if baseline_rate is None:
            try:
                baseline_rate, baseline_cpu = _map_rate(csv, size, budget * 2)
            except RuntimeError as exc:
                rows_out.append(result(f"{case}: map baseline", "rows/s", None, note=str(exc)))
                baseline_rate = 0.0  # no ratio, but the load itself is still measured
        if backend == "SQLite":
            target_db = DATA / f"load-{size_label(size)}.sqlite"
            for old in DATA.glob(target_db.name + "*"):
                old.unlink()
            database = str(target_db)
        else:
            database = fresh_postgres(pg_name)
        with ServerCpu(pg_name) as server:
            done = run_measured(load_command(csv, database), env=child_env(),
                                timeout=budget * 3)
        if done.returncode != 0:
            note = f"load failed (exit {done.returncode}): {done.stderr.strip()[-300:]}"
            rows_out.append(result(case, "resources/s", None, note=note))
            if backend != "SQLite":
                drop_postgres(pg_name)
            break
        stored = _stored(done.stdout) or size
        last_rate = stored / done.seconds
        note = f"{stored:,} resources in {done.seconds:.1f} s"
        if backend == "SQLite":
            note += f"; file {target_db.stat().st_size / 2**20:,.0f} MiB"
            adopt_sqlite(target_db, size, last_rate)  # the serving benchmark reuses it
        else:
            drop_postgres(pg_name)
        rows_out.append(result(
            f"{case}: throughput", "resources/s", last_rate,
            baseline=f"map --ndjson of {size_label(sizes[0])} rows (no store)",
            baseline_value=baseline_rate or None, target="value >= 5000", note=note))
        cpu = done.cpu_seconds + server.seconds
        if cpu:
            split = f"CLI and mapping processes {done.cpu_seconds:.1f} s"
            if backend != "SQLite":
                split += (f", server backend {server.seconds:.1f} s" if server.seconds
                          else ", server backend not visible (not local?)")
            rows_out.append(result(
                f"{case}: per CPU-second", "resources/CPU-s", stored / cpu,
                baseline=f"map --ndjson of {size_label(sizes[0])} rows per CPU-second",
                baseline_value=baseline_cpu or None,
                note=f"{cpu:.1f} CPU-s ({split}) in {done.seconds:.1f} s wall: "
                     f"{cpu / done.seconds:.2f} cores obtained; 5,000/s on 2 cores needs "
                     f"2,500 per CPU-s; load average {os.getloadavg()[0]:.1f}"))
        if first_rss is None:
            first_rss = (size, done.peak_rss_mib)
            rows_out.append(result(f"{case}: peak RSS", "MiB", done.peak_rss_mib))
        else:
            rows_out.append(result(
                f"{case}: peak RSS", "MiB", done.peak_rss_mib,
                baseline=f"peak RSS at {size_label(first_rss[0])}",
                baseline_value=first_rss[1], target="ratio <= 1.5",
                note=f"{size // first_rss[0]}x the rows"))
    return rows_out


def run(quick: bool) -> list[dict]:
    """10k/100k/1M (quick: 2k/10k) generated AEs into SQLite, then PostgreSQL."""
    top = int(settings["top_size"])
    sizes = [2_000, 10_000] if quick else sorted({10_000, min(100_000, top), top})
    budget = QUICK_LOAD_BUDGET if quick else float(settings["load_budget"])
    if gone := missing(*MODULES):
        return [not_available(f"load AE -> {b}", gone, "resources/s")
                for b in ("SQLite", "PostgreSQL")]
    out = _backend("SQLite", sizes, budget)
    try:  # reachable? (dropping this run's own name: never a database in use)
        drop_postgres(f"fhir_adapter_bench_load_{os.getpid()}")
    except Exception as exc:  # no server: say so instead of failing the whole harness
        return out + [result("load AE -> PostgreSQL", "resources/s", None,
                             note=f"not available: PostgreSQL at {postgres_server_url()} "
                                  f"unreachable ({type(exc).__name__})")]
    cap = settings.get("postgres_top_size")
    if quick or cap is None:
        return out + _backend("PostgreSQL", sizes, budget)
    capped = [n for n in sizes if n > int(cap)]
    return out + _backend("PostgreSQL", [n for n in sizes if n <= int(cap)], budget) + [
        result(f"load AE {size_label(n)} -> PostgreSQL", "resources/s", None,
               note=f"skipped: --postgres-top-size {int(cap):,}") for n in capped]
