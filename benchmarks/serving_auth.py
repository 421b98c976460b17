"""Serving with authorization on (AUTH=smart) against the same gateway with it off: read by
id and the 20-hit search on the 10k store, under the same gunicorn set-up, rounds alternating
as in serving.py. The auth-on server verifies the bearer token (cached by its hash after the
first request), checks scopes, rate-limits (RATE_LIMIT=0 here: one client drives all the
load) and records an AuditEvent per request. Both run on one copy of the store (the audit
rows, in its sibling `.audit` file on SQLite, must not pile up beside the cached one).
Target (issue 20): ratio >= 0.8 for both."""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import uuid
from typing import Any
from urllib.parse import urlencode

from . import OUT, result, size_label
from .datasets import store_for
from .servers import GATEWAY_APP, Setup, gunicorn

TARGET = "ratio >= 0.8"
QUICK_ROUNDS = (2, 1.0)  # the smoke run's budget: two pairs of 1-s rounds a case
SCOPE = "system/AdverseEvent.rs"


def _token(port: int, database: str) -> str:
    """Register a client with a fresh ES384 key and get its access token over HTTP."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from fhir_adapter.auth.registry import Registry
    from fhir_adapter.auth.tokens import JWT_BEARER
    from fhir_adapter.store.schema import make_engine

    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    path = OUT / "bench-client.jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "ES384"}]}))
    engine = make_engine(database)
    try:
        client = Registry(engine).add(f"bench-{uuid.uuid4().hex[:8]}", str(path), SCOPE)
    finally:
        engine.dispose()
    url = f"http://127.0.0.1:{port}/fhir/auth/token"
    signed = jwt.encode({"iss": client.client_id, "sub": client.client_id, "aud": url,
                         "exp": int(__import__("time").time()) + 240,
                         "jti": uuid.uuid4().hex}, key, algorithm="ES384",
                        headers={"kid": "bench"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/fhir/auth/token", body=urlencode({
            "grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": signed, "scope": SCOPE}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"token endpoint answered {response.status}: {body}")
    return body["access_token"]


def auth_rows(setup: Setup, quick: bool) -> list[dict[str, Any]]:
    """The read and search rows: auth on / auth off."""
    from .serving import ROUNDS, Rounds, _alternate, _paths

    rounds = QUICK_ROUNDS if quick else ROUNDS[quick]

    try:
        size, source, note = store_for(10_000, quick)
        database = OUT / "auth-bench.db"
        shutil.copyfile(source, database)
        url = f"sqlite:///{database}"
        out: list[dict[str, Any]] = []
        with gunicorn(GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": url}) as off, \
                gunicorn(GATEWAY_APP, setup, {"FHIR_ADAPTER_DATABASE_URL": url,
                                              "FHIR_ADAPTER_AUTH": "smart",
                                              "FHIR_ADAPTER_RATE_LIMIT": "0"}) as on:
            paths = _paths(off.port)
            headers = {"gateway": {"Authorization": f"Bearer {_token(on.port, url)}"}}
            for case in ("read", "search"):
                found = Rounds(0)
                _alternate({"gateway": on, "ceiling": off}, setup.workers, paths[case], found,
                           quick, headers, rounds)
                mine, theirs = found.summary("gateway"), found.summary("ceiling")
                ratios = found.ratios()
                what = "read by id" if case == "read" else "search 20 of"
                text = (f"auth on p50/p95 {mine['p50']:.2f}/{mine['p95']:.2f} ms, off "
                        f"{theirs['p50']:.2f}/{theirs['p95']:.2f} ms; round ratios "
                        f"{min(ratios):.2f}-{max(ratios):.2f}; {mine['errors']} errors; "
                        f"{found.note(rounds[1])}" + (f"; {note}" if note else ""))
                out.append(result(f"{what} {size_label(size)} AE, {setup.label}, auth on",
                                  "req/s", mine["rps"], baseline="same gateway, auth off",
                                  baseline_value=theirs["rps"], target=TARGET, note=text,
                                  ratio=statistics.median(ratios), rounds=found.detail()))
        return out
    except Exception as exc:  # noqa: BLE001 - reported as a row, the rest still runs
        return [result(f"read/search 10k AE, {setup.label}, auth on", "req/s", None,
                       note=f"not available: {exc}")]
    finally:
        for name in ("auth-bench.db", "auth-bench.db.audit"):
            for suffix in ("", "-wal", "-shm"):
                (OUT / f"{name}{suffix}").unlink(missing_ok=True)
