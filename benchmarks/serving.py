"""Serving: the gateway under gunicorn (2 sync workers, then 2 gthread workers) on a store
of generated AdverseEvents, driven from a second process (wrk, else benchmarks.loadgen), and
the bare-Flask ceiling (ceiling_app.py) answering the same URLs with the same bytes under the
identical gunicorn set-up.

Cases: read by id and search `AdverseEvent?subject=Patient/<id>` (20 hits) on the 10k store;
the same search on the 100k and 1M stores (quick: 10k only). req/s and p50/p95/p99.
"""

from __future__ import annotations

import json
from typing import Any

from . import OUT, missing, not_available, result, settings, size_label
from .datasets import store_for
from .generate import SEARCH_HITS, SEARCH_SUBJECT, STUDY_ID
from .loadgen import drive
from .servers import CEILING_APP, GATEWAY_APP, Setup, get, gunicorn

NAME = "serving"
MODULES = ("fhir_adapter.cli", "fhir_adapter.gateway", "fhir_adapter.store",
           "fhir_adapter.loader")
CONNECTIONS = 8
TARGETS = {"read": "ratio >= 0.9", "search": "ratio >= 0.7"}  # of the ceiling, on the 10k store


def _paths(port: int) -> dict[str, str]:
    """The benchmarked URLs on a running gateway: the search, and a read of its first hit."""
    from fhir_adapter import ids

    patient = ids.resource_id("Patient", ids.subject_system(STUDY_ID), SEARCH_SUBJECT)
    search = f"/fhir/AdverseEvent?subject=Patient/{patient}"
    status, _, body = get(port, search)
    if status != 200:
        raise RuntimeError(f"search answered {status}: {body[:200]!r}")
    entries = json.loads(body).get("entry") or []
    if len(entries) != SEARCH_HITS:
        raise RuntimeError(f"search found {len(entries)} AdverseEvents, not {SEARCH_HITS}")
    return {"search": search, "read": f"/fhir/AdverseEvent/{entries[0]['resource']['id']}"}


def _load(base: str, path: str, quick: bool) -> dict[str, Any]:
    duration = 2.0 if quick else 6.0
    requests = 4_000 if quick else 60_000
    drive(base + path, connections=CONNECTIONS, requests=200, duration=0.5)  # warm-up
    return drive(base + path, connections=CONNECTIONS, requests=requests, duration=duration)


def _compare(setup: Setup, wanted: int, cases: list[str], quick: bool
             ) -> tuple[int, str, dict[str, tuple]]:
    """(store size, note, {case: (gateway report, ceiling report, body length)}) for one store
    and set-up; the store may be smaller than `wanted` in a quick run (the note says why)."""
    size, database, note = store_for(wanted, quick)
    gateway: dict[str, dict[str, Any]] = {}
    bodies: dict[str, bytes] = {}
    manifest: dict[str, list[str]] = {}
    with gunicorn(GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": str(database)}) as server:
        paths = _paths(server.port)
        for case in cases:
            status, ctype, bodies[case] = get(server.port, paths[case])
            if status != 200:
                raise RuntimeError(f"{paths[case]} answered {status}")
            file = OUT / f"ceiling-{case}.json"
            file.write_bytes(bodies[case])
            manifest[paths[case]] = [str(file), ctype]
            gateway[case] = _load(server.base, paths[case], quick)
    manifest_file = OUT / "ceiling-manifest.json"
    manifest_file.write_text(json.dumps(manifest))
    out = {}
    with gunicorn(CEILING_APP, setup, {"FHIR_ADAPTER_BENCH_CEILING": str(manifest_file)}) as bare:
        for case in cases:
            status, _, body = get(bare.port, paths[case])
            if status != 200 or body != bodies[case]:
                raise RuntimeError("the ceiling app does not return the gateway's bytes")
            out[case] = (gateway[case], _load(bare.base, paths[case], quick), len(body))
    return size, note, out


def _rows(setup: Setup, size: int, case: str, found: tuple, target: str | None,
          note: str) -> list[dict]:
    ours, bare, length = found
    what = "read by id" if case == "read" else f"search {SEARCH_HITS} of"
    label = f"{what} {size_label(size)} AE, {setup.label}"
    lat = "p50/p95/p99 ms {:.2f}/{:.2f}/{:.2f}"
    text = (f"{length:,} B; ours {lat.format(ours['p50'], ours['p95'], ours['p99'])}, ceiling "
            f"{lat.format(bare['p50'], bare['p95'], bare['p99'])}; {ours['tool']}, "
            f"{CONNECTIONS} connections")
    text += f"; {ours['errors']} errors" if ours["errors"] else ""
    text += f"; {note}" if note else ""
    return [result(f"{label}: throughput", "req/s", ours["rps"], baseline="bare Flask ceiling",
                   baseline_value=bare["rps"], target=target, note=text),
            result(f"{label}: latency", "p95 ms", ours["p95"], baseline="ceiling p95",
                   baseline_value=bare["p95"], p50=ours["p50"], p99=ours["p99"])]


def run(quick: bool) -> list[dict]:
    """Read and search on the 10k store; search on 100k and 1M (full run only)."""
    top = int(settings["top_size"])
    plan = [(10_000, ["read", "search"])] + ([] if quick else [
        (size, ["search"]) for size in sorted({min(100_000, top), top}) if size > 10_000])
    largest = plan[-1][0]
    setups = [Setup("sync"), Setup("gthread")]
    if gone := missing(*MODULES):
        return [not_available(f"read/search AE, {s.label}", gone, "req/s") for s in setups]
    out: list[dict] = []
    for setup in setups:
        first_p95: tuple[int, float] | None = None
        for wanted, cases in plan:
            try:
                size, note, found = _compare(setup, wanted, cases, quick)
            except Exception as exc:  # one store or server failing must not hide the rest
                out.append(result(f"{'/'.join(cases)} {size_label(wanted)} AE, {setup.label}",
                                  "req/s", None, note=f"not available: {exc}"))
                continue
            for case in cases:
                target = TARGETS[case] if wanted == 10_000 else None
                out += _rows(setup, size, case, found[case], target, note)
            p95 = found["search"][0]["p95"]
            if first_p95 is None:
                first_p95 = (size, p95)
            else:
                out.append(result(
                    f"search p95 at {size_label(size)} vs {size_label(first_p95[0])} AE, "
                    f"{setup.label}", "p95 ms", p95,
                    baseline=f"search p95 at {size_label(first_p95[0])}",
                    baseline_value=first_p95[1],
                    target="ratio <= 2" if wanted == largest else None))
    return out
