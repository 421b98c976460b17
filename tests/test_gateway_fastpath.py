"""The fast path (gateway/fastpath.py) answers exactly as Flask alone would: for each request
below, the status, the headers (names, order, values), the body (a searchset's id and
meta.lastUpdated aside) are the same through the fast path and through the inner Flask
`wsgi_app`, errors included (rendered by the same code, with one store read); each request
is answered by the path we expect; and the guard in front of both (security.py) gives both
the same request id, CORS headers and access log line."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask, signals
from gateway_fixtures import database_url
from werkzeug.test import EnvironBuilder

from fhir_adapter.gateway import create_app, searching, uuid4_hex
from fhir_adapter.gateway.context import Ctx
from fhir_adapter.gateway.fastpath import FastPath
from fhir_adapter.gateway.security import Guard
from fhir_adapter.store import SearchQuery

__all__ = ["database_url"]  # fixtures used by name

FHIR = "application/fhir+json"
R5 = f"{FHIR}; fhirVersion=5.0"
TAG = uuid.uuid4().hex[:12]  # this module's ids: other tests share the database
P1, P2, P3 = (f"{TAG}-p{n}" for n in (1, 2, 3))
AES = [f"{TAG}-ae{n}" for n in range(1, 6)]
GONE = f"{TAG}-gone"
CONFIGS = {
    "host-links": {"CORS_ORIGINS": "*"},
    "public-base": {"PUBLIC_BASE_URL": "https://fhir.example.org/fhir/",
                    "CORS_ORIGINS": "http://a.example, http://b.example"},
}


def _adverse_event(rid: str, patient: str) -> dict[str, Any]:
    return {"resourceType": "AdverseEvent", "id": rid, "actuality": "actual",
            "subject": {"reference": f"Patient/{patient}"}}


@pytest.fixture(scope="module")
def apps(database_url: str) -> Iterator[dict[str, Flask]]:
    """One app per CORS / base-URL configuration over the same data."""
    out = {name: create_app({"DATABASE_URL": database_url, **conf})
           for name, conf in CONFIGS.items()}
    client = out["host-links"].test_client()
    for pid, gender in ((P1, "female"), (P2, "male"), (P3, "other")):
        assert client.put(f"/fhir/Patient/{pid}", json={
            "resourceType": "Patient", "id": pid, "gender": gender}).status_code == 201
    for n, rid in enumerate(AES):
        ae = _adverse_event(rid, P1 if n < 4 else P2)
        assert client.put(f"/fhir/AdverseEvent/{rid}", json=ae).status_code == 201
    assert client.put(f"/fhir/AdverseEvent/{GONE}", json=_adverse_event(GONE, P3)
                      ).status_code == 201
    assert client.delete(f"/fhir/AdverseEvent/{GONE}").status_code == 200
    yield out
    for app in out.values():
        app.extensions["fhir_store"].close()


def _call(wsgi: Any, method: str, path: str, headers: dict[str, str]
          ) -> tuple[str, list[tuple[str, str]], bytes]:
    builder = EnvironBuilder(path=path, method=method, headers=headers,
                             base_url="http://gw.example:8080")
    environ = builder.get_environ()
    builder.close()
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: Any = None) -> None:
        started.update(status=status, headers=list(response_headers))

    iterable = wsgi(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()
    return started["status"], started["headers"], body


_BUNDLE_HEAD = re.compile(rb'^\{"resourceType":"Bundle","id":"[0-9a-f-]{36}",'
                          rb'"meta":\{"lastUpdated":"[0-9TZ:.-]+"\}')


def _comparable(answer: tuple[str, list[tuple[str, str]], bytes], request_id: str | None
                ) -> tuple[str, list[tuple[str, str]], bytes]:
    status, headers, body = answer
    out = []
    for name, value in headers:
        if name == "X-Request-Id" and request_id is None:
            assert re.fullmatch("[0-9a-f]{32}", value), value
            value = "<made up>"
        out.append((name, value))
    return status, out, _BUNDLE_HEAD.sub(b'{"resourceType":"Bundle","id":"<id>"', body)


def _fast(app: Flask) -> FastPath:
    guard = app.wsgi_app
    assert isinstance(guard, Guard) and isinstance(guard.inner, FastPath)
    return guard.inner


def _both(app: Flask, method: str, path: str, headers: dict[str, str]
          ) -> tuple[tuple[str, list[tuple[str, str]], bytes], bool]:
    """(the comparable answer, whether the fast path answered it), checked equal to Flask's."""
    fast = _fast(app)
    fell: list[bool] = []

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        fell.append(True)
        return flask_path(environ, start_response)

    flask_path = fast.inner
    fast.inner = spy
    try:
        ours = _call(fast, method, path, headers)
    finally:
        fast.inner = flask_path
    theirs = _call(flask_path, method, path, headers)
    request_id = headers.get("X-Request-Id")
    assert _comparable(ours, request_id) == _comparable(theirs, request_id)
    return _comparable(ours, request_id), not fell


READS = [  # (path, headers, answered by the fast path?, status)
    (f"/fhir/AdverseEvent/{AES[0]}", {}, True, 200),
    (f"/fhir/AdverseEvent/{AES[0]}", {"Accept": FHIR}, True, 200),
    (f"/fhir/AdverseEvent/{AES[0]}", {"Accept": "application/json"}, True, 200),
    (f"/fhir/AdverseEvent/{AES[0]}", {"Accept": "*/*"}, True, 200),
    (f"/fhir/AdverseEvent/{AES[0]}", {"Accept": "text/html, application/json;q=0.9"}, True,
     200),
    (f"/fhir/R4/AdverseEvent/{AES[0]}", {}, True, 200),
    (f"/fhir/Patient/{P1}", {"Accept": R5}, True, 200),
    (f"/fhir/R5/Patient/{P1}", {}, True, 200),
    (f"/fhir/R5/Patient/{P1}", {"Accept": R5}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}", {"Origin": "http://a.example"}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}", {"Origin": "http://elsewhere.example"}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}", {"X-Request-Id": "client-chosen-42"}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}", {"If-None-Match": 'W/"1"'}, True, 304),
    (f"/fhir/AdverseEvent/{AES[1]}", {"If-None-Match": 'W/"7"'}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}", {"If-None-Match": "*"}, True, 304),
    (f"/fhir/AdverseEvent/{AES[1]}", {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
     True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}?_format=json", {}, False, 200),
    (f"/fhir/AdverseEvent/{AES[1]}?_format=xml", {}, False, 406),
    (f"/fhir/AdverseEvent/{AES[1]}?_summary=true", {}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}?_elements=subject", {}, True, 200),
    (f"/fhir/AdverseEvent/{AES[1]}", {"Accept": "application/xml"}, True, 406),
    (f"/fhir/AdverseEvent/{AES[1]}", {"Accept": f"{FHIR}; fhirVersion=3.0"}, True, 406),
    (f"/fhir/R5/AdverseEvent/{AES[1]}", {}, True, 406),  # written in R4 only
    (f"/fhir/AdverseEvent/{AES[1]}", {"Accept": R5}, True, 406),
    (f"/fhir/R5/Patient/{P1}", {"Accept": f"{FHIR}; fhirVersion=4.0"}, True, 400),
    (f"/fhir/Patient/{P1}", {"Content-Type": R5}, False, 200),
    (f"/fhir/AdverseEvent/{TAG}-unknown", {}, True, 404),
    (f"/fhir/AdverseEvent/{GONE}", {}, True, 410),
    (f"/fhir/Nonsense/{AES[1]}", {}, False, 404),
    ("/fhir/ConceptMap/no-such-map", {}, False, 404),
    (f"/fhir/AdverseEvent/{AES[1]}/", {}, False, 404),
    (f"/fhir/AdverseEvent/{AES[1]}/_history", {}, False, 200),
    (f"/fhir/AdverseEvent/{AES[1]}/_history/1", {}, False, 200),
    ("/fhir/AdverseEvent/not%20an%20id", {}, False, 404),
    ("/fhir/metadata", {}, False, 200),
]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize(("path", "headers", "fast", "status"), READS)
def test_read_answers_as_flask_does(apps: dict[str, Flask], config: str, path: str,
                                    headers: dict[str, str], fast: bool, status: int) -> None:
    (line, _, _), answered = _both(apps[config], "GET", path, headers)
    assert int(line.split()[0]) == status
    assert answered is fast


@pytest.mark.parametrize("path", [f"/fhir/AdverseEvent/{AES[2]}",
                                  f"/fhir/R4/AdverseEvent?subject=Patient/{P1}"])
def test_head_has_the_get_headers_and_no_body(apps: dict[str, Flask], path: str) -> None:
    (status, headers, body), answered = _both(apps["host-links"], "HEAD", path, {})
    assert answered and status == "200 OK" and body == b""
    assert dict(headers)["Content-Length"] != "0"


def test_made_up_ids_are_random_version_4_uuids() -> None:
    made = [uuid4_hex() for _ in range(1000)]  # several refills of the random numbers
    assert len(set(made)) == len(made)
    for value in made:
        found = uuid.UUID(value)
        assert found.version == 4 and found.variant == uuid.RFC_4122 and found.hex == value


def _subject(pid: str) -> str:
    return f"subject=Patient/{pid}"


SEARCHES = [  # (path and query, headers, answered by the fast path?, status)
    (f"/fhir/AdverseEvent?{_subject(P1)}", {}, True, 200),
    (f"/fhir/R4/AdverseEvent?{_subject(P1)}", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_count=2", {}, True, 200),  # next, last
    (f"/fhir/AdverseEvent?{_subject(P1)}&_count=2&_offset=2", {}, True, 200),  # previous
    (f"/fhir/AdverseEvent?{_subject(P1)}&_count=3&_offset=9", {}, True, 200),  # past the end
    (f"/fhir/AdverseEvent?{_subject(P1)}&_count=0", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_total=none&_count=2", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_total=estimate", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_summary=count", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_summary=true", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_elements=subject", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_sort=-_id", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&unknown-param=1&_pretty=true", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_count=2&{_subject(P2)}", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&actuality=actual&{_subject(P2)}", {}, True, 200),
    (f"/fhir/AdverseEvent?subject=Patient/{P1},Patient/{P2}&actuality=actual", {}, True, 200),
    (f"/fhir/AdverseEvent?subject=Patient%2F{P1}&_id={AES[0]},{AES[3]}", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_include=AdverseEvent:subject", {}, True, 200),
    (f"/fhir/Patient?_id={P1}&_revinclude=AdverseEvent:subject", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}", {"Origin": "http://b.example"}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}", {"X-Request-Id": "req-1"}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}", {"Accept": "application/json"}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}", {"If-None-Match": 'W/"1"'}, True, 200),
    (f"/fhir/R5/Patient?_id={P1},{P2}", {}, True, 200),
    (f"/fhir/Patient?_id={P1}&gender=female", {"Accept": R5}, True, 200),
    (f"/fhir/R5/AdverseEvent?{_subject(P1)}", {}, True, 200),  # none in R5: empty
    ("/fhir/AdverseEvent?_count=2", {}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_format=json", {}, False, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}", {"Prefer": "handling=strict"}, True, 200),
    (f"/fhir/AdverseEvent?{_subject(P1)}&bogus=1", {"Prefer": "handling=strict"}, True,
     400),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_count=many", {}, True, 400),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_summary=nonsense", {}, True, 400),
    (f"/fhir/AdverseEvent?{_subject(P1)}&_include:iterate=AdverseEvent:subject", {}, True,
     400),
    (f"/fhir/AdverseEvent?{_subject(P1)}", {"Accept": "text/turtle"}, True, 406),
    (f"/fhir/R4/AdverseEvent?{_subject(P1)}", {"Accept": R5}, True, 400),
    ("/fhir/ConceptMap?_count=1", {}, False, 200),
    ("/fhir/Nonsense?_count=1", {}, False, 404),
]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize(("path", "headers", "fast", "status"), SEARCHES)
def test_search_answers_as_flask_does(apps: dict[str, Flask], config: str, path: str,
                                      headers: dict[str, str], fast: bool, status: int
                                      ) -> None:
    (line, _, _), answered = _both(apps[config], "GET", path, headers)
    assert int(line.split()[0]) == status
    assert answered is fast


def test_search_links_come_from_the_host_or_the_public_base(apps: dict[str, Flask]) -> None:
    path = f"/fhir/AdverseEvent?{_subject(P1)}&_count=2"
    (_, _, body), _ = _both(apps["host-links"], "GET", path, {})
    assert b'"url":"http://gw.example:8080/fhir/AdverseEvent?subject=Patient%2F' in body
    assert b'"relation":"next"' in body and b'"relation":"last"' in body
    (_, _, body), _ = _both(apps["public-base"], "GET", path.replace("/fhir/", "/fhir/R4/"), {})
    assert b'"url":"https://fhir.example.org/fhir/R4/AdverseEvent?subject=' in body


def test_writes_and_other_methods_go_to_flask(apps: dict[str, Flask]) -> None:
    for method in ("OPTIONS", "POST", "DELETE"):
        _, answered = _both(apps["public-base"], method, f"/fhir/AdverseEvent?{_subject(P3)}",
                            {"Origin": "http://a.example", "Access-Control-Request-Method": "GET"}
                            if method == "OPTIONS" else {})
        assert not answered


def test_the_guard_logs_and_marks_both_paths_alike(apps: dict[str, Flask],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    app = apps["public-base"]
    fast_path, flask_path = (f"/fhir/AdverseEvent/{AES[3]}",
                             f"/fhir/AdverseEvent/{AES[3]}?_format=json")
    sent = {"X-Request-Id": "log-1", "Origin": "http://a.example"}
    with caplog.at_level(logging.INFO, logger="fhir_adapter.gateway.access"):
        answers = [_call(app.wsgi_app, "GET", p, sent) for p in (fast_path, flask_path)]
    lines = [re.sub(r" [0-9.]+ms ", " <ms> ", r.getMessage()) for r in caplog.records
             if r.name == "fhir_adapter.gateway.access"]
    assert lines == [f"GET {p.split('?')[0]} 200 <ms> id=log-1" for p in (fast_path,
                                                                          flask_path)]
    for _, headers, _ in answers:
        named = dict(headers)
        assert named["X-Request-Id"] == "log-1"
        assert named["Access-Control-Allow-Origin"] == "http://a.example"
        assert named["X-Content-Type-Options"] == "nosniff"
        assert [n for n, _ in headers].count("X-Request-Id") == 1


def test_an_update_is_read_at_once(apps: dict[str, Flask]) -> None:
    app = apps["host-links"]
    client = app.test_client()
    rid = f"{TAG}-fresh"
    assert client.put(f"/fhir/AdverseEvent/{rid}", json=_adverse_event(rid, P3)
                      ).status_code == 201
    assert client.get(f"/fhir/AdverseEvent/{rid}").headers["ETag"] == 'W/"1"'
    changed = _adverse_event(rid, P2)
    assert client.put(f"/fhir/AdverseEvent/{rid}", json=changed).status_code == 200
    (_, headers, _), answered = _both(app, "GET", f"/fhir/AdverseEvent/{rid}", {})
    assert answered and dict(headers)["ETag"] == 'W/"2"'
    (_, _, body), answered = _both(app, "GET", f"/fhir/AdverseEvent?{_subject(P2)}", {})
    assert answered and rid.encode() in body


def test_fast_path_can_be_turned_off(database_url: str) -> None:
    app = create_app({"DATABASE_URL": database_url, "FAST_PATH": False})
    try:
        assert not isinstance(app.wsgi_app.inner, FastPath)  # type: ignore[attr-defined]
    finally:
        app.extensions["fhir_store"].close()


class _StoredOnly:
    """The store without `search_rows`: searching.run builds the Bundle from Stored."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "search_rows":
            raise AttributeError(name)
        return getattr(self._store, name)


PLAIN = [  # (type, version, query): searches searching.run answers from (id, bytes) rows
    ("AdverseEvent", "R4", _subject(P1)),
    ("AdverseEvent", "R4", f"{_subject(P1)}&_count=2"),
    ("AdverseEvent", "R4", f"{_subject(P1)}&_count=2&_offset=2"),
    ("AdverseEvent", "R4", f"{_subject(P1)}&_count=3&_offset=9"),
    ("AdverseEvent", "R4", f"{_subject(P1)}&_count=0"),
    ("AdverseEvent", "R4", f"{_subject(P1)}&_total=none&_count=2"),
    ("AdverseEvent", "R4", f"{_subject(P1)}&_total=estimate&_count=4"),
    ("AdverseEvent", "R4", f"subject=Patient/{P1},Patient/{P2}&actuality=actual"),
    ("AdverseEvent", "R4", f"{_subject(P1)}&{_subject(P2)}"),
    ("AdverseEvent", "R4", f"_id={AES[0]},{AES[4]},{GONE}"),
    ("AdverseEvent", "R5", _subject(P1)),
    ("Patient", "R5", f"_id={P1},{P2}&gender=male"),
]


@pytest.mark.parametrize(("rtype", "version", "query"), PLAIN)
def test_plain_search_bundles_from_rows_equal_those_from_stored(
        apps: dict[str, Flask], rtype: str, version: str, query: str) -> None:
    store = apps["host-links"].extensions["fhir_store"]
    c = Ctx(store, version, "http://gw.example/fhir", FHIR, 50, 20)  # type: ignore[arg-type]
    params = parse_qsl(query)

    def bundle(ctx: Ctx) -> bytes:
        req = searching.parse(ctx, rtype, params, False)
        return _BUNDLE_HEAD.sub(b"<head>", searching.run(ctx, req, False))

    filters = [(k, v) for k, v in params if not k.startswith("_") or k == "_id"]
    assert store.search_rows(SearchQuery(rtype, version, filters)) is not None  # rows, then
    assert bundle(c) == bundle(replace(c, store=_StoredOnly(store)))


def test_hooks_and_signal_receivers_added_later_are_not_bypassed(database_url: str) -> None:
    path = f"/fhir/AdverseEvent?{_subject(P1)}"
    seen: list[str] = []
    app = create_app({"DATABASE_URL": database_url})
    hooked = create_app({"DATABASE_URL": database_url})
    hooked.before_request(lambda: seen.append("hook"))  # e.g. an auth check, after create_app

    def note(sender: Any, **extra: Any) -> None:
        seen.append("signal")

    try:
        assert _both(app, "GET", path, {})[1]  # answered fast: as created
        signals.request_started.connect(note)
        try:
            assert not _both(app, "GET", path, {})[1]
        finally:
            signals.request_started.disconnect(note)
        assert seen == ["signal", "signal"] and _both(app, "GET", path, {})[1]
        assert not _both(hooked, "GET", path, {})[1] and seen[-2:] == ["hook", "hook"]
    finally:
        for each in (app, hooked):
            each.extensions["fhir_store"].close()


def test_threads_answering_at_once_get_their_own_answers(apps: dict[str, Flask]) -> None:
    app = apps["host-links"]
    paths = [f"/fhir/AdverseEvent/{rid}" for rid in AES] + [
        f"/fhir/AdverseEvent?{_subject(P1)}", f"/fhir/AdverseEvent?{_subject(P2)}"]
    fast = _fast(app)
    expected = {path: _comparable(_call(fast.inner, "GET", path, {}), None)
                for path in paths}
    failures: list[str] = []

    def client(n: int) -> None:
        for k in range(40):
            path = paths[(n + k) % len(paths)]
            if _comparable(_call(fast, "GET", path, {}), None) != expected[path]:
                failures.append(path)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
