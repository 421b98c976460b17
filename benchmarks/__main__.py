"""`python -m benchmarks [--quick] [--only NAME] [--json PATH]`: run the benchmarks, print one
Markdown table (each figure beside its baseline from the same run, as a ratio) and write JSON.

Order matters: `load` fills the SQLite stores that `serving`, `export` and `startup` reuse
(cached under benchmarks/out/data, keyed by the code that made them).
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import OUT, ROOT, finish, result, settings

MODULES = ("mapping", "enrollment_stream", "load", "serving", "serving_tail", "writes", "terms",
           "export", "startup", "dashboard", "chains")


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load average, Python: what the figures depend on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "memory_gib": mem and round(mem, 1),
            "loadavg_at_start": os.getloadavg(), "python": platform.python_version(),
            "wrk": shutil.which("wrk") is not None, "platform": platform.platform()}


def compile_bytecode() -> None:
    """Write the project's bytecode caches now. An installed package has them (pip compiles
    at install), a checkout writes them on first import, but not where
    PYTHONDONTWRITEBYTECODE is set (as in some CI and container images): every benchmarked
    process would then compile fhir_adapter from source, ~0.02 s of each `--help` and ~0.05 s
    of each load or worker start, which no user pays. compileall writes them regardless."""
    for package in ("fhir_adapter", "benchmarks"):
        compileall.compile_dir(ROOT / package, quiet=2)


def run_one(module_name: str, quick: bool) -> tuple[str, list[dict[str, Any]], float]:
    """(NAME, rows, seconds) of one benchmark module; failures become rows saying so."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"benchmarks.{module_name}":
            raise
        note = f"not available: benchmarks.{module_name} missing"
        return module_name, [result(module_name, "", None, note=note)], 0.0
    except Exception as exc:  # a module being written may not import yet
        note = f"failed to import: {type(exc).__name__}: {exc}"
        return module_name, [result(module_name, "", None, note=note)], 0.0
    name = getattr(module, "NAME", module_name)
    try:
        rows = [finish(dict(row)) for row in module.run(quick)]
    except Exception as exc:
        traceback.print_exc()
        rows = [result(name, "", None, note=f"failed: {type(exc).__name__}: {exc}")]
    return name, rows, time.perf_counter() - start


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if not isinstance(value, int | float):
        return str(value)
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".strip()


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    """The Markdown table of every row."""
    lines = ["| benchmark | case | value | baseline | ratio | target | met | note |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for row in rows:
            base = row.get("baseline_value")
            baseline = f"{_num(base)} ({row.get('baseline')})" if base is not None else (
                row.get("baseline") or "")
            ratio = "–" if row.get("ratio") is None else f"{row['ratio']:.3g}×"
            met = {True: "met", False: "**missed**", None: ""}[row.get("met")]
            note = str(row.get("note") or "").replace("|", "/")
            case, unit = str(row.get("case", "")), row.get("metric", "")
            if row.get("unit"):  # metric names the quantity, unit its unit
                case, unit = f"{case}: {unit}" if unit else case, row["unit"]
            cells = [name, case, _num(row.get("value"), unit),
                     baseline, ratio, str(row.get("target") or ""), met, note]
            lines.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; exit 1 when a benchmark produced no number at all."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (2k/10k rows, short load runs): the CI smoke run")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"run only these (repeatable, or comma-separated): "
                             f"{', '.join(MODULES)}")
    parser.add_argument("--json", type=Path, default=OUT / "results.json",
                        help="where to write the results (default: benchmarks/out/results.json)")
    parser.add_argument("--top-size", type=int, default=settings["top_size"],
                        help="largest generated data set of the full run (default 1,000,000)")
    parser.add_argument("--load-budget", type=float, default=settings["load_budget"],
                        help="seconds one load may take before larger ones are skipped")
    parser.add_argument("--postgres-top-size", type=int, default=None,
                        help="largest PostgreSQL load of the full run (default: --top-size)")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl+C: every `with gunicorn(...)` stops its server on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings.update(top_size=args.top_size, load_budget=args.load_budget,
                    postgres_top_size=args.postgres_top_size)
    chosen = [n.strip().replace("-", "_") for item in args.only or []
              for n in item.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {MODULES}")
    OUT.mkdir(parents=True, exist_ok=True)
    compile_bytecode()
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"), "machine": machine(),
        "command": " ".join(["python -m benchmarks", *(argv if argv is not None
                                                       else sys.argv[1:])]),
        "quick": args.quick, "settings": dict(settings), "benchmarks": {}}
    results: dict[str, list[dict[str, Any]]] = {}
    for module_name in MODULES:
        if chosen and module_name not in chosen:
            continue
        print(f"benchmark {module_name} ...", file=sys.stderr, flush=True)
        name, rows, seconds = run_one(module_name, args.quick)
        results[name] = rows
        report["benchmarks"][name] = {"seconds": round(seconds, 1), "rows": rows}
        print(f"benchmark {module_name}: {len(rows)} row(s) in {seconds:.1f} s",
              file=sys.stderr, flush=True)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    report["seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table(results))
    print(f"\nresults: {args.json}", file=sys.stderr)
    empty = [n for n, rows in results.items() if not any(
        isinstance(r.get("value"), int | float) for r in rows)]
    if empty:
        print(f"no figures from: {', '.join(empty)}", file=sys.stderr)
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
