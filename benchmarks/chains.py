"""Chained search, `_has` and `:identifier` (store/chains.py) at 100k and 1M AdverseEvents:
p50/p95 of each beside a plain search of the same store, in the same run.

The store: N AdverseEvents, N/10 Patients (10 events each, the reference carrying the
patient's identifier too), one ResearchSubject per Patient in one of STUDIES studies, and
N/100 site Organizations (10 patients each, 100 events). Written in R4 with the store's own
bulk writer (`SqlStore.bulk_upsert`: the same rows and index rows as any write, without the
mapping and validation the load benchmark measures), cached under benchmarks/out/data by the
code fingerprint like the load benchmark's stores.

Each search asks for a page of 20 with an accurate total, as the gateway does by default, in
process (`store.search`): the SQL's cost, not HTTP's. The cases run round-robin, one search
of each per round, so background load hits every case alike; p50/p95 are over the rounds.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import statistics
import time
from collections.abc import Iterator
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

from . import ROOT, result, settings, size_label
from .datasets import DATA

NAME = "chains"
STUDIES = 10
MRN = "urn:oid:2.16.840.1.113883.3.9999"  # synthetic patient identifier system
NCT = "https://clinicaltrials.gov"
ROUNDS = {True: 15, False: 40}
CHUNK = 50_000  # resources written per transaction
PROBE = 123  # the patient / organization / study the searches ask for


def patients_of(size: int) -> int:
    return max(size // 10, 10)


def world(size: int) -> Iterator[dict[str, Any]]:
    """The resources of a store of `size` AdverseEvents (R4), streamed."""
    patients = patients_of(size)
    sites = max(patients // 10, 1)
    for s in range(STUDIES):
        yield {"resourceType": "ResearchStudy", "id": f"rs-{s}", "status": "active",
               "identifier": [{"system": NCT, "value": f"NCT9{s:07d}"}]}
    for o in range(sites):
        yield {"resourceType": "Organization", "id": f"org-{o}", "name": f"Site {o}",
               "identifier": [{"system": "urn:site", "value": f"SITE-{o:06d}"}]}
    for p in range(patients):
        yield {"resourceType": "Patient", "id": f"p-{p}",
               "identifier": [{"system": MRN, "value": f"M{p:07d}"}],
               "managingOrganization": {"reference": f"Organization/org-{p % sites}"}}
        yield {"resourceType": "ResearchSubject", "id": f"sub-{p}", "status": "on-study",
               "study": {"reference": f"ResearchStudy/rs-{p % STUDIES}"},
               "individual": {"reference": f"Patient/p-{p}"}}
    for a in range(size):
        p = a % patients
        yield {"resourceType": "AdverseEvent", "id": f"ae-{a}", "actuality": "actual",
               "subject": {"reference": f"Patient/p-{p}",
                           "identifier": {"system": MRN, "value": f"M{p:07d}"}},
               "study": [{"reference": f"ResearchStudy/rs-{p % STUDIES}"}],
               "date": f"20{10 + a % 15}-{1 + a % 12:02d}-{1 + a % 28:02d}"}


def fill(store: Any, size: int) -> int:
    """Write the world of `size` AEs into `store`; the number of resources written."""
    written, items = 0, world(size)
    while chunk := list(islice(items, CHUNK)):  # one unit per chunk: bounded memory
        with store.transaction(bulk=True) as tx:
            for _ in tx.bulk_upsert({"R4": r} for r in chunk):
                written += 1
    store.analyze()
    return written


def cases(size: int) -> dict[str, tuple[str, list[tuple[str, str]], int]]:
    """case -> (type, parameters, expected total) at `size` AEs."""
    patients = patients_of(size)
    sites = max(patients // 10, 1)
    site, patient = PROBE % sites, PROBE % patients
    per_site = len(range(site, patients, sites)) * (size // patients)
    return {
        "plain search (baseline)": ("AdverseEvent", [("subject", f"Patient/p-{patient}")],
                                    size // patients),
        # the same search with a modifier: SQLAlchemy's general path, as every case below
        "plain search, general path": ("AdverseEvent", [("subject:Patient", f"p-{patient}")],
                                       size // patients),
        "two-level chain": ("AdverseEvent", [("subject:Patient.organization.identifier",
                                              f"urn:site|SITE-{site:06d}")], per_site),
        "untyped chain": ("AdverseEvent", [("subject.identifier", f"{MRN}|M{patient:07d}")],
                          size // patients),
        ":identifier": ("AdverseEvent", [("subject:identifier", f"{MRN}|M{patient:07d}")],
                        size // patients),
        "_has (one event's patient)": ("Patient", [("_has:AdverseEvent:subject:_id",
                                                    f"ae-{PROBE}")], 1),
        "_has nested": ("Organization", [("_has:Patient:organization:_has:AdverseEvent:"
                                          "subject:_id", f"ae-{PROBE}")], 1),
        "_has (a study's patients)": ("Patient", [("_has:ResearchSubject:individual:study",
                                                   f"ResearchStudy/rs-{PROBE % STUDIES}")],
                                      len(range(PROBE % STUDIES, patients, STUDIES))),
    }


@cache
def fingerprint() -> str:
    """Changes when what decides the stored rows changes: `world` and the store's writing
    and indexing code (not the search code, which reads the same rows)."""
    h = hashlib.sha256(inspect.getsource(world).encode())
    store = ROOT / "fhir_adapter" / "store"
    for path in sorted([*store.glob("*.py"), *(ROOT / "fhir_adapter" / "data" /
                                               "searchparameters").glob("*.json")]):
        if path.name not in ("search.py", "chains.py", "fastsearch.py", "reading.py"):
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def store_path(size: int) -> Path:
    return DATA / f"chains-{size_label(size)}-{fingerprint()}.sqlite"


def built_store(size: int) -> tuple[Any, str]:
    """The cached SQLite store of `size` AEs, built unless cached; (store, note)."""
    from fhir_adapter.store import open_store

    path = store_path(size)
    if path.is_file():
        return open_store(str(path)), "cached store"
    DATA.mkdir(parents=True, exist_ok=True)
    for old in DATA.glob(f"chains-{size_label(size)}-*.sqlite*"):
        old.unlink()  # stores of older code
    tmp = path.with_suffix(".building")
    for leftover in DATA.glob(tmp.name + "*"):
        leftover.unlink()
    start = time.perf_counter()
    store = open_store(str(tmp))
    written = fill(store, size)
    store.engine.dispose()
    os.replace(tmp, path)
    seconds = time.perf_counter() - start
    return open_store(str(path)), f"built: {written:,} resources in {seconds:,.0f} s"


def measure(store: Any, size: int, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per search of each case, round-robin; each total checked."""
    from fhir_adapter.store.base import SearchQuery

    chosen = cases(size)
    times: dict[str, list[float]] = {case: [] for case in chosen}
    for n in range(rounds + 1):  # round 0 warms caches and is not counted
        for case, (rtype, params, total) in chosen.items():
            query = SearchQuery(rtype, "R4", params, count=20, strict=True)
            start = time.perf_counter()
            found = store.search(query)
            took = (time.perf_counter() - start) * 1000
            if found.total != total:
                raise RuntimeError(f"{case}: {found.total} matches, expected {total}")
            if n:
                times[case].append(took)
    return times


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(quick: bool) -> list[dict[str, Any]]:
    sizes = [10_000] if quick else [n for n in (100_000, 1_000_000)
                                    if n <= settings["top_size"]]
    rows = []
    for size in sizes:
        store, built = built_store(size)
        try:
            times = measure(store, size, ROUNDS[quick])
        finally:
            store.engine.dispose()
        load = os.getloadavg()
        plain = times.pop("plain search (baseline)")
        general = times.pop("plain search, general path")
        base50, base95 = _p(plain, 50), _p(plain, 95)
        label = size_label(size)
        rows.append(result(f"plain search, {label} AE (SQLite)", "p50 ms", base50,
                           note=f"p95 {base95:.2f} ms; {built}; load average "
                                f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"))
        rows.append(result(f"plain search, general path, {label} AE (SQLite)", "p50 ms",
                           _p(general, 50), baseline="plain search p50", baseline_value=base50,
                           note=f"p95 {_p(general, 95):.2f} ms: what building the SQL with "
                                "SQLAlchemy costs (every case below takes this path)"))
        for case, found in times.items():
            total = cases(size)[case][2]
            rows.append(result(f"{case}, {label} AE (SQLite)", "p50 ms", _p(found, 50),
                               baseline="plain search p50", baseline_value=base50,
                               note=f"p95 {_p(found, 95):.2f} ms (plain {base95:.2f}); "
                                    f"{total:,} matches, page of 20; {len(found)} rounds"))
    return rows
