"""Generated inputs and loaded stores, cached under benchmarks/out/data between runs.

A cached file is named after a fingerprint of what made it (the generator for CSVs; the
generator and the whole fhir_adapter package for databases), so a changed mapping or store
never serves a stale database to the serving benchmark.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path

from . import OUT, ROOT, child_env, cli_command, run_measured, settings, size_label
from .generate import STUDY_ID, write_ae_csv, write_studies

DATA = OUT / "data"
INTERVENTION = "Xanomeline"  # the pilot's study drug: AE relatedness refers to it
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
QUICK_LOAD_BUDGET = 60.0  # seconds one load may take in a quick run (the CI smoke run)


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


@cache
def generator_fingerprint() -> str:
    """Changes when the generator or its distributions change."""
    here = ROOT / "benchmarks"
    return _digest([here / "generate.py", here / "distributions.py"])


@cache
def code_fingerprint() -> str:
    """Changes when the generator or any module of fhir_adapter changes."""
    package = ROOT / "fhir_adapter"
    files = [p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".json")
             and "__pycache__" not in p.parts]
    return _digest(files + [ROOT / "benchmarks" / "generate.py",
                            ROOT / "benchmarks" / "distributions.py"])


def ae_csv(size: int) -> Path:
    """A generated SDTM AE CSV of `size` rows (generated on first use)."""
    path = DATA / f"ae-{size_label(size)}-{generator_fingerprint()}.csv"
    return path if path.is_file() else write_ae_csv(path, size)


def studies_json(size: int) -> Path:
    """A JSON array of `size` generated CT.gov studies (generated on first use)."""
    path = DATA / f"studies-{size_label(size)}-{generator_fingerprint()}.json"
    return path if path.is_file() else write_studies(path, size)


def load_command(csv: Path, database: str) -> list[str]:
    """`fhir-adapter load adverse-events` of a generated CSV into `database`."""
    return [*cli_command(), "load", "adverse-events", str(csv), "--database", database,
            "--study", STUDY_ID, "--intervention", INTERVENTION, "--no-progress"]


def sqlite_path(size: int) -> Path:
    """Where the cached SQLite store of `size` generated AEs lives (it may not exist yet)."""
    return DATA / f"store-{size_label(size)}-{code_fingerprint()}.sqlite"


def loaded_sqlite(size: int, timeout: float = 3600) -> Path:
    """A SQLite store holding `size` generated AEs, loaded by the CLI unless cached."""
    path = sqlite_path(size)
    if path.is_file():
        return path
    tmp = path.with_suffix(".loading")
    for leftover in DATA.glob(tmp.name + "*"):
        leftover.unlink()
    csv = ae_csv(size)
    done = run_measured(load_command(csv, str(tmp)), env=child_env(), timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"loading {size} AEs failed (exit {done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    adopt_sqlite(tmp, size, size / done.seconds)
    return path


def adopt_sqlite(loaded: Path, size: int, rate: float) -> None:
    """Keep a store just filled (at `rate` resources/s) as the cached store of `size` AEs."""
    for old in DATA.glob(f"store-{size_label(size)}-*.sqlite*"):
        old.unlink()  # stores of older code: they would only take disk space
    target = sqlite_path(size)
    for suffix in ("-wal", "-shm"):  # WAL side files, if the loader left any
        side = loaded.with_name(loaded.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    os.replace(loaded, target)
    (DATA / "load-rate.json").write_text(json.dumps({"code": code_fingerprint(), "rate": rate}))


def known_load_rate() -> float | None:
    """The SQLite load rate last measured with this code, if any."""
    try:
        found = json.loads((DATA / "load-rate.json").read_text())
    except (OSError, ValueError):
        return None
    return found["rate"] if found.get("code") == code_fingerprint() else None


def store_for(wanted: int, quick: bool, budget: float | None = None,
              fallback: bool | None = None) -> tuple[int, Path, str]:
    """(size, path, note) of a SQLite store of `wanted` AEs: cached, or loaded unless the
    last measured load rate says that takes over `budget` seconds. Then, with `fallback`
    (default: in quick runs), the largest smaller cached store (or a 2k one) is used, the note
    saying why; without, RuntimeError says why."""
    budget = budget if budget is not None else (QUICK_LOAD_BUDGET if quick
                                                else float(settings["load_budget"]))
    if sqlite_path(wanted).is_file():
        return wanted, sqlite_path(wanted), ""
    rate = known_load_rate()
    if rate is None or wanted / rate <= budget:
        return wanted, loaded_sqlite(wanted, timeout=max(budget * 2, 120)), ""
    why = (f"loading {size_label(wanted)} AEs would take ~{wanted / rate:,.0f} s at the "
           f"{rate:,.0f}/s measured (budget {budget:,.0f} s)")
    if not (quick if fallback is None else fallback):
        raise RuntimeError(f"no {size_label(wanted)} store: {why}")
    smaller = [n for n in (2_000, 10_000, 50_000, 100_000)
               if n < wanted and sqlite_path(n).is_file()]
    size = max(smaller, default=2_000)
    return size, loaded_sqlite(size), f"{size_label(size)} store used: {why}"


def postgres_server_url() -> str:
    """The PostgreSQL server to benchmark on (the test suite's, else local defaults)."""
    return os.environ.get("FHIR_ADAPTER_TEST_POSTGRES_URL") or DEFAULT_POSTGRES


def _admin(name: str) -> tuple[str, str]:
    """(URL of the server's own database for psycopg, URL of database `name` for the CLI)."""
    from sqlalchemy.engine import make_url

    server = make_url(postgres_server_url())
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    return admin, server.set(database=name).render_as_string(hide_password=False)


def fresh_postgres(name: str = "fhir_adapter_bench") -> str:
    """(Re)create database `name` on the server and return its URL."""
    import psycopg

    admin, url = _admin(name)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def drop_postgres(name: str = "fhir_adapter_bench") -> None:
    """Drop the benchmark database again (it can be large)."""
    import psycopg

    admin, _ = _admin(name)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
