"""Write load from a second process: `connections` threads, each with one keep-alive
http.client connection, sending writes one by one until `duration` seconds have passed or
the work runs out. Every request carries a body of its own (no two creates alike).

    python -m benchmarks.writeload http://127.0.0.1:PORT/fhir create --work work.json \
        --connections 8 --duration 2 --ids-out ids.txt

Operations (`work.json` holds {"bodies": [resource, ...], "ids": [id, ...]}):
- create: POST [base]/AdverseEvent with bodies[i] (server-assigned id); the ids from the
  Location headers go to --ids-out, for the update and delete rounds;
- update: PUT [base]/AdverseEvent/<id> with bodies[i] given that id (new content: a
  new version);
- delete: DELETE [base]/AdverseEvent/<id>, each id once;
- transaction: POST [base] with a transaction Bundle of TX_ENTRIES creates.

It prints one JSON object: requests, seconds, rps, errors (non-2xx or failed, with the first
error's status and body), sent (how many of the work's requests went out: a delete round
leaves the rest of its ids for the next), p50/p95/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from .loadgen import exchange, in_threads, percentile

TX_ENTRIES = 3  # creates per transaction Bundle
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def requests_for(op: str, base_path: str, work: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """(method, path, body) of every request the round may send, in order."""
    bodies, ids = work.get("bodies", []), work.get("ids", [])
    path = f"{base_path}/AdverseEvent"
    if op == "create":
        return [("POST", path, orjson.dumps({k: v for k, v in b.items() if k != "id"}))
                for b in bodies]
    if op == "update":
        return [("PUT", f"{path}/{rid}", orjson.dumps(
            {"resourceType": "AdverseEvent", "id": rid,
             **{k: v for k, v in b.items() if k not in ("resourceType", "id")}}))
            for rid, b in zip(ids, bodies, strict=False)]
    if op == "delete":
        return [("DELETE", f"{path}/{rid}", b"") for rid in ids]
    if op == "transaction":
        out = []
        for start in range(0, len(bodies) - TX_ENTRIES + 1, TX_ENTRIES):
            entries = [{"fullUrl": f"urn:uuid:{_urn(start + n)}",
                        "resource": {k: v for k, v in b.items() if k != "id"},
                        "request": {"method": "POST", "url": "AdverseEvent"}}
                       for n, b in enumerate(bodies[start:start + TX_ENTRIES])]
            out.append(("POST", base_path or "/", orjson.dumps(
                {"resourceType": "Bundle", "type": "transaction", "entry": entries})))
        return out
    raise ValueError(f"unknown operation {op!r}")


def _urn(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def generate(base: str, op: str, work: dict[str, Any], connections: int,
             duration: float) -> dict[str, Any]:
    """Send the round's requests from `connections` threads; latencies of every answer."""
    parts = urlsplit(base)
    todo = requests_for(op, parts.path.rstrip("/"), work)
    lock = threading.Lock()
    latencies: list[float] = []
    created: list[str] = []
    errors: list[str] = []
    next_item = [0]
    deadline = time.perf_counter() + duration

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        ids: list[str] = []
        failed: list[str] = []
        while time.perf_counter() < deadline:
            with lock:
                if next_item[0] >= len(todo):
                    break
                method, path, body = todo[next_item[0]]
                next_item[0] += 1
            start = time.perf_counter()
            try:
                response, answer = exchange(conn, method, path, HEADERS, body or None)
            except (OSError, http.client.HTTPException) as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status >= 300:
                failed.append(f"{response.status} {answer[:300]!r}")
            elif op == "create":
                ids.append(response.getheader("Location", "").split(
                    "/AdverseEvent/", 1)[-1].split("/", 1)[0])
            mine.append((time.perf_counter() - start) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            created.extend(ids)
            errors.extend(failed)

    seconds = in_threads(worker, connections)
    latencies.sort()
    seconds = max(seconds, 1e-9)
    done = len(latencies) - len(errors)
    return {"requests": done, "seconds": seconds, "rps": done / seconds if seconds else 0.0,
            "errors": len(errors), "first_error": errors[0] if errors else None,
            "exhausted": next_item[0] >= len(todo), "sent": next_item[0], "created": created,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99)}


def main(argv: list[str] | None = None) -> None:
    """Command line: one JSON line on stdout; created ids to --ids-out."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.writeload")
    parser.add_argument("base", help="the FHIR base URL, e.g. http://127.0.0.1:8080/fhir")
    parser.add_argument("op", choices=("create", "update", "delete", "transaction"))
    parser.add_argument("--work", required=True, help="JSON file: bodies and ids")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--ids-out", help="write the created ids here, one a line")
    args = parser.parse_args(argv)
    with open(args.work, "rb") as fh:
        work = orjson.loads(fh.read())
    report = generate(args.base, args.op, work, args.connections, args.duration)
    created = report.pop("created")
    if args.ids_out:
        with open(args.ids_out, "w") as fh:
            fh.write("".join(f"{i}\n" for i in created))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
