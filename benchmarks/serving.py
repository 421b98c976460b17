"""Serving: the gateway under gunicorn (2 sync workers, then 2 gthread workers) on a store
of generated AdverseEvents, driven from a second process (wrk, else benchmarks.loadgen), and
the bare-Flask ceiling (ceiling_app.py) answering the same URLs with the same bytes under the
identical gunicorn set-up.

Cases: read by id and search `AdverseEvent?subject=Patient/<id>` (20 hits) on the 10k store;
the same search on the 100k and 1M stores (quick: 10k only). req/s and p50/p95/p99. The
tail at 32 connections, sync against gthread, is serving_tail.py's.

Rounds, and why: one long run of the gateway followed by one of the ceiling swung 0.4x-1.1x
on a 2-core machine, because background work hits one run and not the other, and because
with gthread workers all of wrk's keep-alive connections may land on one worker (opened in a
burst, they are all accepted by whichever worker wakes first): one core serves, the other
idles. So both servers stay up side by side, and short rounds alternate gateway, ceiling,
gateway, ceiling... (3 rounds of 1 s per case in a quick run, 7 of 2 s in a full one), one
server driven at a time, so that noise tends to hit both sides of a round.

Starved rounds: each worker's CPU time is read from /proc before and after a round; a round in
which a worker took under STARVED_SHARE of the workers' CPU is run once more with fresh
connections (a new wrk), for both servers alike. A pair of rounds still starved on either side
after that is left out of the figures (unless every pair is), and the note counts both.

Figures: req/s is the median of a side's per-round rates; the ratio is the median of the
per-round ratios (gateway round i / ceiling round i, their min-max in the note), so it need
not equal value / baseline; p50/p95/p99 are those of a side's median round (wrk reports
percentiles, not histograms that could be pooled). JSON rows keep every round under `rounds`.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from . import OUT, missing, not_available, result, settings, size_label
from .datasets import store_for
from .generate import SEARCH_HITS, SEARCH_SUBJECT, STUDY_ID
from .loadgen import drive
from .servers import CEILING_APP, GATEWAY_APP, Server, Setup, get, gunicorn

NAME = "serving"
MODULES = ("fhir_adapter.cli", "fhir_adapter.gateway", "fhir_adapter.store",
           "fhir_adapter.pipeline.load")
CONNECTIONS = 8
TARGETS = {"read": "ratio >= 0.9", "search": "ratio >= 0.7"}  # of the ceiling, on the 10k store
# (rounds per server, seconds per round): wrk takes whole seconds.
ROUNDS = {True: (3, 1.0), False: (7, 2.0)}
STARVED_SHARE = 0.1  # a worker with less of the workers' CPU in a round sat (almost) idle


@dataclass
class Rounds:
    """Both servers' rounds of one case, paired by index: gateway round i ran just before
    ceiling round i. A starved round is re-run once and the re-run takes its place."""

    length: int  # bytes of the response
    gateway: list[dict[str, Any]] = field(default_factory=list)
    ceiling: list[dict[str, Any]] = field(default_factory=list)
    reruns: dict[str, int] = field(default_factory=lambda: {"gateway": 0, "ceiling": 0})

    def kept(self) -> list[int]:
        """The pairs whose rounds both had every worker busy (all pairs if none had): a pair
        starved on one side only compares one core with two, not the applications."""
        clean = [i for i, (g, c) in enumerate(zip(self.gateway, self.ceiling, strict=True))
                 if not (g["starved"] or c["starved"])]
        return clean or list(range(len(self.gateway)))

    def ratios(self) -> list[float]:
        """gateway / ceiling req/s of each kept pair."""
        return [self.gateway[i]["rps"] / self.ceiling[i]["rps"] for i in self.kept()]

    def summary(self, side: str) -> dict[str, Any]:
        """req/s: median of the kept rounds; p50/p95/p99: those of the kept round with the
        median req/s (the lower middle one of an even count); errors: of every round."""
        rounds = getattr(self, side)
        kept = sorted((rounds[i] for i in self.kept()), key=lambda r: r["rps"])
        mid = kept[(len(kept) - 1) // 2]
        return {"rps": statistics.median(r["rps"] for r in kept), "p50": mid["p50"],
                "p95": mid["p95"], "p99": mid["p99"], "tool": mid["tool"],
                "errors": sum(r["errors"] for r in rounds)}

    def note(self, seconds: float) -> str:
        """How the figures were made, the spread of the ratios, and the starved rounds."""
        ratios, kept = self.ratios(), len(self.kept())
        text = (f"ratio = median of {kept} per-round ratio{'s' * (kept != 1)} (min-max "
                f"{min(ratios):.2f}-{max(ratios):.2f}) of alternating {seconds:g}-s rounds, "
                f"req/s their medians, latency from each side's median round")
        reruns = self.reruns["gateway"] + self.reruns["ceiling"]
        if reruns:
            text += (f"; {reruns} round(s) re-run for a starved worker (ours "
                     f"{self.reruns['gateway']}, ceiling {self.reruns['ceiling']})")
        else:
            text += "; no round had a starved worker"
        if left := len(self.gateway) - kept:
            text += f", {left} pair(s) starved again and left out"
        elif any(r["starved"] for r in self.gateway + self.ceiling):
            text += ", every pair starved on a side even so: none left out"
        return text

    def detail(self) -> dict[str, Any]:
        """Every round, for the JSON report."""
        def brief(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: r[k] for k in ("rps", "p95", "shares", "starved")} for r in rounds]

        return {"kept": self.kept(), "gateway": brief(self.gateway),
                "ceiling": brief(self.ceiling), "reruns": self.reruns}


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


def _round(server: Server, workers: int, path: str, seconds: float,
           headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One load run of `seconds` on `server`, with each worker's share of the CPU it took."""
    before = server.worker_cpu()
    report = drive(server.base + path, connections=CONNECTIONS,
                   requests=int(20_000 * seconds), duration=seconds, headers=headers)
    after = server.worker_cpu()
    used = [after[pid] - before.get(pid, 0.0) for pid in after]
    total = sum(used)
    shares = sorted((u / total for u in used), reverse=True) if total > 0 else []
    # A missing worker counts as a share of 0; no /proc at all (no shares) flags nothing.
    shares += [0.0] * (workers - len(shares)) if shares else []
    report["shares"] = [round(s, 3) for s in shares]
    report["starved"] = bool(shares) and min(shares) < STARVED_SHARE
    return report


def _alternate(servers: dict[str, Server], workers: int, path: str, found: Rounds,
               quick: bool, headers: dict[str, dict[str, str]] | None = None,
               rounds: tuple[int, float] | None = None) -> None:
    """Warm both servers up, then alternate rounds gateway, ceiling, ... into `found`; a
    starved round is run once more (a new load process: fresh connections). `headers`:
    what each side's requests carry besides Accept; `rounds`: (count, seconds), else
    ROUNDS."""
    count, seconds = rounds or ROUNDS[quick]
    sent = headers or {}
    for side, server in servers.items():  # the Python generator: wrk would take a second
        drive(server.base + path, connections=CONNECTIONS, requests=400, duration=0.5,
              tool="python", headers=sent.get(side))
    for _ in range(count):
        for side, server in servers.items():
            report = _round(server, workers, path, seconds, sent.get(side))
            if report["starved"]:
                found.reruns[side] += 1
                report = _round(server, workers, path, seconds, sent.get(side))
            getattr(found, side).append(report)


def _compare(setup: Setup, wanted: int, cases: list[str], quick: bool
             ) -> tuple[int, str, dict[str, Rounds]]:
    """(store size, note, {case: its rounds on both servers}) for one store and set-up; the
    store may be smaller than `wanted` in a quick run (the note says why)."""
    size, database, note = store_for(wanted, quick)
    bodies: dict[str, bytes] = {}
    manifest: dict[str, list[str]] = {}
    out = {}
    with gunicorn(GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": str(database)}) as server:
        paths = _paths(server.port)
        for case in cases:
            status, ctype, bodies[case] = get(server.port, paths[case])
            if status != 200:
                raise RuntimeError(f"{paths[case]} answered {status}")
            file = OUT / f"ceiling-{case}.json"
            file.write_bytes(bodies[case])
            manifest[paths[case]] = [str(file), ctype]
        manifest_file = OUT / "ceiling-manifest.json"
        manifest_file.write_text(json.dumps(manifest))
        with gunicorn(CEILING_APP, setup,
                      {"FHIR_ADAPTER_BENCH_CEILING": str(manifest_file)}) as bare:
            for case in cases:
                status, _, body = get(bare.port, paths[case])
                if status != 200 or body != bodies[case]:
                    raise RuntimeError("the ceiling app does not return the gateway's bytes")
                out[case] = Rounds(len(body))
                _alternate({"gateway": server, "ceiling": bare}, setup.workers, paths[case],
                           out[case], quick)
    return size, note, out


def _rows(setup: Setup, size: int, case: str, found: Rounds, target: str | None,
          note: str, quick: bool) -> list[dict]:
    ours, bare = found.summary("gateway"), found.summary("ceiling")
    what = "read by id" if case == "read" else f"search {SEARCH_HITS} of"
    label = f"{what} {size_label(size)} AE, {setup.label}"
    lat = "p50/p95/p99 ms {:.2f}/{:.2f}/{:.2f}"
    text = (f"{found.length:,} B; ours {lat.format(ours['p50'], ours['p95'], ours['p99'])}, "
            f"ceiling {lat.format(bare['p50'], bare['p95'], bare['p99'])}; {ours['tool']}, "
            f"{CONNECTIONS} connections; {found.note(ROUNDS[quick][1])}")
    text += f"; {ours['errors']} errors" if ours["errors"] else ""
    text += f"; {note}" if note else ""
    # ratio is given, not value / baseline_value: the median of ratios, not of rates.
    return [result(f"{label}: throughput", "req/s", ours["rps"], baseline="bare Flask ceiling",
                   baseline_value=bare["rps"], target=target, note=text,
                   ratio=statistics.median(found.ratios()), rounds=found.detail()),
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
                out += _rows(setup, size, case, found[case], target, note, quick)
            p95 = found["search"].summary("gateway")["p95"]
            if first_p95 is None:
                first_p95 = (size, p95)
            else:
                out.append(result(
                    f"search p95 at {size_label(size)} vs {size_label(first_p95[0])} AE, "
                    f"{setup.label}", "p95 ms", p95,
                    baseline=f"search p95 at {size_label(first_p95[0])}",
                    baseline_value=first_p95[1],
                    target="ratio <= 2" if wanted == largest else None))
        if not quick or setup is setups[-1]:  # quick: gthread only, within the smoke budget
            from .serving_auth import auth_rows

            out += auth_rows(setup, quick)
    return out
