"""Fuzzing the gateway (issue 18): search parameters from the CapabilityStatement with hostile
values, hostile bodies, paths and headers, on both stores. Any 5xx, any error body that is
not an OperationOutcome, or a refused write that stored anything, fails. Seeded (the same
requests every run); FHIR_ADAPTER_FUZZ_REQUESTS (default 1000 per store: ~2,000 in CI) asks
for more."""

from __future__ import annotations

import json
import os
import time
from typing import Any
from urllib.parse import quote

from flask import Flask
from gateway_fixtures import FHIR, app, database_url
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import text

from fhir_adapter.store.canonical import loads

__all__ = ["app", "database_url"]  # fixtures

REQUESTS = int(os.environ.get("FHIR_ADAPTER_FUZZ_REQUESTS") or 1000)
TYPES = ["ResearchStudy", "ResearchSubject", "AdverseEvent", "Patient", "Group",
         "Organization", "Location", "EvidenceVariable", "ConceptMap", "Bogus"]
NASTY = ["", " ", "\x00", "a\x00b", "%", "_", "\\", "\\,", "a,b", "a|b", "|", "$", "a$b",
         "' OR 1=1 --", '"; DROP TABLE resources; --', "${jndi:ldap://x}", "<script>",
         "9" * 40, "-1", "1e309", "NaN", "0x10", "١", "gt2026-13-45", "ge", "ap1e400",
         "2026-02-30", "eq-5", "urn:uuid:", "Patient/", "Patient/..", "../../etc/passwd",
         "x" * 3000, "\ud800", "😀", "true", "false", "null", "ResearchStudy/" + "a" * 70]
MODIFIERS = ["", ":missing", ":exact", ":contains", ":not", ":text", ":below", ":above",
             ":Patient", ":ResearchStudy", ":Bogus", ":iterate", ":", "::"]
RESULT = ["_count", "_offset", "_sort", "_total", "_summary", "_elements", "_include",
          "_revinclude", "_format", "_pretty", "_contained", "_has:Patient:x:y", "_id",
          "_lastUpdated", "_text", "_filter", "bogus", "a.b", "study.identifier",
          "subject:Patient.name", "study:ResearchStudy.bogus", "study.sponsor.name"]
HEADERS = {
    "Accept": ["application/fhir+json", "application/fhir+xml", "*/*", "text/html",
               "application/fhir+json; fhirVersion=9.9", "application/json;q=0",
               "application/fhir+json; fhirVersion=5.0", ";;;", "x" * 500],
    "Content-Type": ["application/fhir+json", "application/json", "text/plain",
                     "application/fhir+json; fhirVersion=3.0", "multipart/form-data",
                     "application/x-www-form-urlencoded", "application/fhir+json; charset=x"],
    "Prefer": ["handling=lenient", "handling=strict", "return=minimal",
               "return=OperationOutcome", "respond-async", "=;=,", "return=" + "x" * 300],
    "If-Match": ['W/"1"', "W/\"99999999999999999999999\"", "*", "x", "W/\"١\""],
    "If-None-Match": ["*", 'W/"1"', "garbage"],
    "If-None-Exist": ["identifier=x", "bogus=1", "_id=%00", "&&&", ""],
    "If-Modified-Since": ["Mon, 01 Jan 2024 00:00:00 GMT", "yesterday", "\t"],
    "X-Request-Id": ["x" * 2000, "<>", "id"],
}
_LATIN = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
                 max_size=40)


def _capability(app: Flask) -> dict[str, list[str]]:
    """{type: its search parameter codes} from the R4 CapabilityStatement."""
    statement = loads(app.test_client().get("/fhir/metadata").data)
    return {r["type"]: [p["name"] for p in r.get("searchParam", [])]
            for r in statement["rest"][0]["resource"]}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from(NASTY),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["resourceType", "id", "meta", "extension", "url",
                                       "valueUrl", "name", "identifier", "entry", "request",
                                       "resource", "method", "status", "photo", "text", "x"])
                      | st.text(max_size=8), inner, max_size=5),
    max_leaves=20)


@st.composite
def resources(draw: st.DrawFn) -> Any:
    """Something shaped like a FHIR resource, often broken."""
    rtype = draw(st.sampled_from(TYPES))
    body = draw(st.dictionaries(st.sampled_from(["id", "status", "identifier", "name",
                                                 "extension", "photo", "meta", "text",
                                                 "study", "subject", "entry", "type"]),
                                json_values, max_size=5))
    return {"resourceType": rtype, **body} if draw(st.booleans()) else draw(json_values)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        depth = draw(st.integers(50, 1500))
        return b'{"resourceType":"Patient","extension":' + b"[" * depth + b"]" * depth + b"}"
    if kind == 1:
        return draw(st.binary(max_size=200))
    if kind == 2:
        entries = draw(st.lists(st.fixed_dictionaries({
            "request": st.fixed_dictionaries({
                "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "X"]),
                "url": st.sampled_from(TYPES).map(str) | st.sampled_from(NASTY)}),
            "resource": resources()}), max_size=4))
        bundle = {"resourceType": "Bundle", "type": draw(st.sampled_from(
            ["transaction", "batch", "collection", 5])), "entry": entries}
        return json.dumps(bundle).encode("utf-8", "surrogatepass")
    return json.dumps(draw(resources())).encode("utf-8", "surrogatepass")


@st.composite
def requests(draw: st.DrawFn, capability: dict[str, list[str]]
             ) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path with query, headers, body)."""
    rtype = draw(st.sampled_from(sorted(capability) + ["Bogus"]))
    prefix = draw(st.sampled_from(["/fhir", "/fhir/R4", "/fhir/R5"]))
    names = capability.get(rtype, []) + RESULT
    params = draw(st.lists(st.tuples(
        st.sampled_from(names), st.sampled_from(MODIFIERS),
        st.sampled_from(NASTY) | st.text(max_size=12)), max_size=4))
    query = "&".join(f"{quote(n + m, safe=':.')}="
                     f"{quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
                     for n, m, v in params)
    rid = draw(st.sampled_from(["x", "a%00b", "%ff%fe", "1" * 65, "..", "%2e%2e", "a b"])
               | st.from_regex(r"[A-Za-z0-9.\-]{1,64}", fullmatch=True))
    shape = draw(st.integers(0, 9))
    method, body = "GET", None
    if shape <= 3:
        path = f"{prefix}/{rtype}?{query}"
    elif shape == 4:
        vid = draw(st.sampled_from(["1", "9" * 30, "١", "-1"]))
        path = f"{prefix}/{rtype}/{rid}/_history/{vid}"
    elif shape == 5:
        method, path = "POST", f"{prefix}/{rtype}/_search"
        body = query.encode()
    else:
        method = draw(st.sampled_from(["POST", "PUT", "DELETE", "PATCH"]))
        path = draw(st.sampled_from([f"{prefix}/{rtype}", f"{prefix}/{rtype}/{rid}",
                                     f"{prefix}", f"{prefix}/{rtype}/$validate",
                                     f"{prefix}/$ingest?kind=bundle&{query}"]))
        body = draw(bodies())
    headers = {"Content-Type": FHIR} if body is not None else {}
    for name in draw(st.lists(st.sampled_from(sorted(HEADERS)), max_size=3, unique=True)):
        headers[name] = draw(st.sampled_from(HEADERS[name]) | _LATIN)
    return method, path, headers, body


def _versions(app: Flask) -> int:
    """How many resource versions the store holds, once background $ingest jobs are done
    (they live in the database: store/jobs.py)."""
    engine = app.extensions["fhir_store"].engine
    deadline = time.monotonic() + 60
    while True:
        with engine.connect() as conn:
            pending = conn.execute(text("SELECT count(*) FROM export_jobs WHERE status IN "
                                        "('queued', 'running')")).scalar_one()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM resource_versions")).scalar_one())


def test_no_request_gets_a_5xx_or_a_non_outcome_error(app: Flask) -> None:
    """... and a refused write stores nothing (the store's version count stays)."""
    capability = _capability(app)
    client = app.test_client()

    @seed(18)
    @settings(max_examples=REQUESTS, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(requests(capability))
    def check(request: tuple[str, str, dict[str, str], bytes | None]) -> None:
        method, path, headers, body = request
        writes = method != "GET" and not path.endswith("/_search")
        before = _versions(app) if writes else 0
        answer = client.open(path, method=method, headers=headers, data=body)
        status = answer.status_code
        assert status < 500, (request, answer.data[:300])
        if status >= 400 and writes and "respond-async" not in headers.get("Prefer", ""):
            assert _versions(app) == before, ("a refused request stored something", request)
        if status >= 400:
            assert answer.mimetype == FHIR, (request, answer.headers)
            parsed = loads(answer.data)
            assert parsed["resourceType"] == "OperationOutcome", (request, parsed)
            assert parsed["issue"], request

    check()
