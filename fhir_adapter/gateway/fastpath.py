"""A thin WSGI layer in front of Flask for the two hot requests: a plain read
(`GET /fhir[/R4|/R5]/<Type>/<id>`) and a plain search (`GET /fhir[/R4|/R5]/<Type>?...`).

Flask's own dispatch (request context, routing, hooks, Response object) costs about as much
as the whole request's own work, so these answer straight from the store: the same stored
bytes, built by the same code (`searching.parse`/`run` for searches), with exactly the headers
and access log line the Flask routes send. Anything else goes to Flask unchanged: other
methods and paths, ConceptMap, query parameters on a read, `_format`, a Content-Type, Prefer,
conditional headers (If-None-Match, If-Modified-Since), an Accept that negotiation refuses,
and every error (404, 410, 406, 400, ...), which Flask then answers as it always does; and
every request once Flask has request hooks or signal receivers beyond create_app's own.
tests/test_gateway_fastpath*.py pin the equivalence.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, signals
from werkzeug.wrappers import Request

import fhir_adapter.gateway.searching as searching

from .context import STORED_TYPES, Ctx
from .hooks import CORS_EXPOSE, access_log, uuid4_hex
from .negotiation import accepted
from .responses import CONTENT_TYPES, etag, http_date

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Answer = tuple[str, int, list[tuple[str, str]], bytes]  # request id, status, headers, body

# ASCII ids only (FHIR ids are [A-Za-z0-9-.]{1,64}): no decoding question, and no clash with
# the static routes ($validate, _history, _search, metadata) which Flask matches first.
_PATH = re.compile(r"/fhir(?:/(R4|R5))?/([A-Za-z]{1,64})(?:/([A-Za-z0-9.\-]{1,64}))?")
_TYPES = frozenset(STORED_TYPES)
# Headers the Flask read route acts on: a read carrying any of them goes to Flask.
_READ_FALLBACK = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
_STATUS = {200: "200 OK"}
_EXPOSE = ("Access-Control-Expose-Headers", CORS_EXPOSE)
_SIGNALS = (signals.request_started, signals.request_finished, signals.request_tearing_down,
            signals.appcontext_pushed, signals.appcontext_popped,
            signals.appcontext_tearing_down)
_ANY_ORIGIN = [("Access-Control-Allow-Origin", "*"), _EXPOSE]
_NO_ORIGIN = [_EXPOSE]


class FastPath:
    """WSGI middleware over the Flask app's `wsgi_app`: see the module docstring."""

    def __init__(self, app: Flask, origins: frozenset[str] | None) -> None:
        self.app = app
        self.inner = app.wsgi_app  # Flask's own path: everything not answered here
        self._origins = origins
        self._hosts: dict[tuple[Any, ...], str] = {}
        # The request hooks create_app installed, whose work _answer does itself. Hooks or
        # signal receivers added later (an auth check, say) must not be bypassed: then
        # every request goes to Flask.
        self._hooks = ({k: list(v) for k, v in app.before_request_funcs.items()},
                       {k: list(v) for k, v in app.after_request_funcs.items()})
        # On SQLite an answer is CPU work under the GIL (pages come from memory), but sqlite3
        # lets the GIL go at every row. Threads answering at once (gunicorn gthread) then
        # hand it back and forth: on a busy machine, some runs of a 20-match search took ~55
        # context switches a request (~6 normally) and twice the CPU; answered one at a time,
        # the worst runs took ~15. The threads gain nothing from overlapping CPU work.
        # PostgreSQL's network round trips are worth overlapping: no lock there.
        engine = getattr(app.extensions["fhir_store"], "engine", None)
        self._one_at_a_time = (threading.Lock() if getattr(engine, "name", "") == "sqlite"
                               else contextlib.nullcontext())

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            answer = self._answer(environ)
        except Exception:  # noqa: BLE001 - Flask answers (and logs) it as it always does
            answer = None
        if answer is None:
            return self.inner(environ, start_response)
        request_id, status, headers, body = answer
        headers += self._cors(environ)
        headers.append(("X-Request-Id", request_id))
        start_response(_STATUS[status], headers)
        method = environ["REQUEST_METHOD"]
        access_log(method, environ["PATH_INFO"], status, started, request_id)
        return [] if method == "HEAD" else [body]

    def _answer(self, environ: Environ) -> Answer | None:
        """(request id, status, headers, body) when this request is one of ours, else None."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("CONTENT_TYPE"):  # a body may state a fhirVersion
            return None
        release, rtype, rid = match.groups()
        config = self.app.config
        if (rtype not in _TYPES or config.get("SERVER_NAME") or config.get("TRUSTED_HOSTS")
                or not self._as_created()):
            return None  # ConceptMap's own store; Flask's host checks; hooks added since
        request_id = environ.get("HTTP_X_REQUEST_ID") or uuid4_hex()
        if "\n" in request_id or "\r" in request_id:
            return None  # werkzeug refuses such a header value: let it say so
        negotiated = accepted(environ.get("HTTP_ACCEPT", ""))  # 406 raises: Flask answers
        if release and negotiated.version and negotiated.version != release:
            return None  # 400
        version = release or negotiated.version or "R4"
        store = self.app.extensions["fhir_store"]
        if rid is not None:
            if environ.get("QUERY_STRING") or any(environ.get(h) for h in _READ_FALLBACK):
                return None
            with self._one_at_a_time:
                stored = store.read(rtype, rid)  # NotFound / Gone raise: Flask answers
            body = stored.body.get(version)
            if body is None:
                return None  # 406, not representable in this version
            return request_id, 200, [
                ("ETag", etag(stored.version_id)),
                ("Last-Modified", http_date(stored.last_updated)),
                ("Content-Type", CONTENT_TYPES[negotiated.mime, version]),
                ("Content-Length", str(len(body)))], body
        if environ.get("HTTP_PREFER"):
            return None  # handling=strict
        params = _query(environ.get("QUERY_STRING", ""))
        if params is None:
            return None
        conf = config["FHIR_ADAPTER"]
        configured = conf.get("PUBLIC_BASE_URL")
        base = str(configured).rstrip("/") if configured else self._host_base(environ)
        c = Ctx(store, version, base + (f"/{release}" if release else ""), negotiated.mime,
                int(conf["MAX_COUNT"]), int(conf["DEFAULT_COUNT"]))
        req = searching.parse(c, rtype, params, False)
        with self._one_at_a_time:
            body = searching.run(c, req, False)
        return request_id, 200, [("Content-Type", CONTENT_TYPES[negotiated.mime, version]),
                                 ("Content-Length", str(len(body)))], body

    def _as_created(self) -> bool:
        """Whether Flask would run only the hooks create_app installed (see __init__)."""
        app = self.app
        return ((app.before_request_funcs, app.after_request_funcs) == self._hooks
                and not any(app.teardown_request_funcs.values())
                and not any(app.url_value_preprocessors.values())
                and not any(app.teardown_appcontext_funcs)
                and not any(signal.receivers for signal in _SIGNALS))

    def _cors(self, environ: Environ) -> list[tuple[str, str]]:
        """The CORS headers the Flask after-request hook adds to a GET."""
        if self._origins is None:
            return list(_ANY_ORIGIN)
        origin = environ.get("HTTP_ORIGIN")
        if origin and origin in self._origins:
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"), _EXPOSE]
        return list(_NO_ORIGIN)

    def _host_base(self, environ: Environ) -> str:
        """context.public_base() without a configured URL: werkzeug's host_url + /fhir,
        worked out once per (scheme, Host, server) and then remembered."""
        key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"),
               environ.get("SERVER_NAME"), environ.get("SERVER_PORT"))
        found = self._hosts.get(key)
        if found is None:
            if len(self._hosts) >= 256:  # bounded: the Host header is the client's to choose
                self._hosts.clear()
            host_url = Request(environ, populate_request=False).host_url
            found = self._hosts[key] = host_url.rstrip("/") + "/fhir"
        return found


def _query(query: str) -> list[tuple[str, str]] | None:
    """The search's parameters as Flask's `request.args.items(multi=True)` lists them (same
    parsing; a repeated name's values together, at its first place); None with `_format`."""
    grouped: dict[str, list[str]] = {}
    for name, value in parse_qsl(query.encode("latin1").decode(), keep_blank_values=True,
                                 errors="werkzeug.url_quote"):
        grouped.setdefault(name, []).append(value)
    if "_format" in grouped:
        return None  # negotiated from the query: Flask's
    return [(name, value) for name, values in grouped.items() for value in values]
