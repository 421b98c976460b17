"""Terminology searches and history `_at`: what `:in`, `:not-in`, `:of-type` and `_at` cost
beside a plain token search, on the same gateway (gunicorn, 2 sync workers) over the same
store of generated AdverseEvents (the serving benchmark's SQLite stores: 100k and 1M in a full
run, 10k or smaller in a quick one), in the same run.

Cases (R4, `_count=20`, the default `_total=accurate`):
- baseline: `AdverseEvent?identifier=<system>|<value>`, one hit (a plain token search);
- `seriousness:in=<ValueSet of serious, non-serious>`, and beside it the same answer asked
  without the modifier, `seriousness=<system>|serious,<system>|non-serious`: the modifier's
  own cost is the difference between those two;
- `seriousness:not-in=<the same ValueSet>`: the events with no seriousness;
- `identifier:of-type=<v2-0203>|MR|<value>`, one hit: the generated events carry no typed
  identifier, so before measuring the benchmark gives the baseline's event one (a PUT through
  the gateway, which writes its `:of-type` index rows like any write);
- `AdverseEvent/<id>/_history?_at=<instant>` and `AdverseEvent/_history?_at=<instant>`, and
  beside them the type history without `_at` (what a history page costs by itself).

Latency, not throughput: one client sends a case's request and the baseline's in turn
(REPEATS pairs; fewer where one request takes seconds), one at a time on a keep-alive
connection, so each figure is the server's time for one request and noise on the machine hits
both sides of a pair alike. p50/p95 are over a side's requests; the ratio is the case's p50
over the baseline's. Most events match `:in`, so its total counts them all, as the plain
search of the same codes does; `:not-in` reads the same matches to leave them out.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import quote

from . import missing, not_available, result, settings, size_label
from .datasets import store_for
from .generate import SEARCH_SUBJECT, STUDY_ID
from .loadgen import percentile
from .servers import GATEWAY_APP, Setup, gunicorn

NAME = "terms"
MODULES = ("fhir_adapter.gateway", "fhir_adapter.valuesets")
REPEATS = {True: 5, False: 25}  # request pairs per case
SLOW = 2.0  # seconds: a case whose first request took longer gets SLOW_REPEATS pairs
SLOW_REPEATS = 3
TIMEOUT = 600.0  # one request on a busy machine over 1M rows: seconds, not a hang
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
VALUE_SET = "https://fhir-adapter.dev/fhir/ValueSet/sdtm-aeser-seriousness-r4-target"


class Client:
    """One keep-alive connection to the gateway; each request timed."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    def send(self, method: str, path: str, body: dict[str, Any] | None = None
             ) -> tuple[float, dict[str, Any]]:
        """(seconds, JSON body) of one request answered 200/201; RuntimeError otherwise."""
        headers = {"Accept": "application/fhir+json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
            data = json.dumps(body).encode()
        start = time.perf_counter()
        self.conn.request(method, path, data, headers)
        answer = self.conn.getresponse()
        payload = answer.read()
        took = time.perf_counter() - start
        if answer.status not in (200, 201):
            raise RuntimeError(f"{method} {path} answered {answer.status}: {payload[:300]!r}")
        return took, json.loads(payload)

    def json(self, path: str) -> dict[str, Any]:
        return self.send("GET", path)[1]


def _paths(client: Client) -> dict[str, str]:
    """The measured URLs; gives one event of the search subject a typed identifier."""
    from fhir_adapter import ids

    patient = ids.resource_id("Patient", ids.subject_system(STUDY_ID), SEARCH_SUBJECT)
    first = client.json(f"/fhir/AdverseEvent?subject=Patient/{patient}&_count=1")
    event = first["entry"][0]["resource"]
    identifier = event["identifier"]  # R4: one Identifier
    if "type" not in identifier:
        identifier["type"] = {"coding": [{"system": V2_0203, "code": "MR"}]}
        event = client.send("PUT", f"/fhir/AdverseEvent/{event['id']}", event)[1]
    system, value = identifier["system"], identifier["value"]
    at = quote(event["meta"]["lastUpdated"], safe="")
    vs = quote(VALUE_SET, safe="")
    both = quote(f"{SERIOUSNESS}|serious,{SERIOUSNESS}|non-serious", safe="")
    return {
        "plain token": f"/fhir/AdverseEvent?identifier={quote(f'{system}|{value}', safe='')}",
        ":in": f"/fhir/AdverseEvent?seriousness:in={vs}",
        "same codes, no modifier": f"/fhir/AdverseEvent?seriousness={both}",
        ":not-in": f"/fhir/AdverseEvent?seriousness:not-in={vs}",
        ":of-type": "/fhir/AdverseEvent?identifier:of-type="
                    + quote(f"{V2_0203}|MR|" + value.replace("|", "\\|"), safe=""),
        "instance _history?_at": f"/fhir/AdverseEvent/{event['id']}/_history?_at={at}",
        "type _history?_at": f"/fhir/AdverseEvent/_history?_at={at}&_count=20",
        "type _history (no _at)": "/fhir/AdverseEvent/_history?_count=20",
    }


def _check(client: Client, paths: dict[str, str]) -> tuple[dict[str, int], dict[str, float]]:
    """Each case answers with what it should: ({case: matches}, {case: seconds it took})."""
    found, took = {}, {}
    for case, path in paths.items():
        took[case], bundle = client.send("GET", path)
        found[case] = bundle.get("total", len(bundle.get("entry", [])))
    if found["plain token"] != 1 or found[":of-type"] != 1:
        raise RuntimeError(f"identifier searches found {found}, not one event each")
    if found[":in"] != found["same codes, no modifier"]:
        raise RuntimeError(f":in and its plain equivalent disagree: {found}")
    return found, took


def _measure(client: Client, paths: dict[str, str], case: str, pairs: int
             ) -> tuple[list[float], list[float]]:
    """(the case's latencies, the baseline's) in ms, the two sent in turn."""
    ours, base = [], []
    for _ in range(pairs):
        base.append(client.send("GET", paths["plain token"])[0] * 1000)
        ours.append(client.send("GET", paths[case])[0] * 1000)
    return sorted(ours), sorted(base)


def _row(size: int, note: str, case: str, path: str, matches: int, ours: list[float],
         base: list[float]) -> dict:
    p50, p95 = percentile(ours, 50), percentile(ours, 95)
    b50, b95 = percentile(base, 50), percentile(base, 95)
    text = (f"p95 {p95:,.1f} ms (plain token {b95:,.1f}); {matches:,} matches; "
            f"{len(ours)} requests each, alternating, one at a time")
    text += f"; {note}" if note else ""
    return result(f"{case}, {size_label(size)} AE: latency", "p50 ms", p50,
                  baseline="plain token search p50", baseline_value=b50, note=text, p95=p95,
                  base_p95=b95, path=path)


def run(quick: bool) -> list[dict]:
    """Every case against the plain token search, on the 100k and 1M stores (quick: 10k)."""
    top = int(settings["top_size"])
    sizes = [10_000] if quick else sorted({min(100_000, top), top})
    if gone := missing(*MODULES):
        return [not_available(f"terminology searches {size_label(s)} AE", gone, "p50 ms")
                for s in sizes]
    setup = Setup("sync")
    out: list[dict] = []
    for wanted in sizes:
        try:
            size, database, note = store_for(wanted, quick)
            with gunicorn(GATEWAY_APP, setup,
                          {"FHIR_ADAPTER_DATABASE_URL": str(database)}) as server:
                client = Client(server.port)
                paths = _paths(client)
                _check(client, paths)  # a warm-up: each worker's first requests build caches
                matches, took = _check(client, paths)
                for case, path in paths.items():
                    if case == "plain token":
                        continue
                    pairs = SLOW_REPEATS if took[case] > SLOW else REPEATS[quick]
                    ours, base = _measure(client, paths, case, pairs)
                    out.append(_row(size, note, case, path, matches[case], ours, base))
        except Exception as exc:  # one store failing must not hide the other
            out.append(result(f"terminology searches {size_label(wanted)} AE", "p50 ms", None,
                              note=f"not available: {exc}"))
    return out
