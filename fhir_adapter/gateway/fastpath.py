"""A thin WSGI dispatch in front of Flask for the two hot requests: a read
(`GET /fhir[/R4|/R5]/<Type>/<id>`) and a search (`GET /fhir[/R4|/R5]/<Type>?...`).

Flask's own dispatch (request context, routing, hooks, Response object) costs about as much
as the whole request's own work. This dispatch skips it, and nothing else: it calls the same
functions as the Flask routes (`rest.read_parts`, `rest.search_parts`, which take the same
store lock and make the same scope checks), builds its context with the same `make_ctx`,
and renders errors with the same OperationOutcome code (`errors.render`). Authentication,
rate limits, CORS, security headers, the request id, the access log and the audit trail run
outside both paths (security.py's Guard).

What it leaves to Flask: other methods and paths, ConceptMap (its own store), `_format`
(negotiated from the query), a request body (its Content-Type may state a fhirVersion),
an app with SERVER_NAME / TRUSTED_HOSTS (Flask's host checks), and every request once Flask
has request hooks or signal receivers for the FHIR routes beyond create_app's own, which
this dispatch would otherwise skip. tests/test_gateway_fastpath*.py pin the equivalence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, signals
from werkzeug.http import HTTP_STATUS_CODES, remove_entity_headers

from ..errors import FhirError
from .context import STORED_TYPES, Ctx, make_ctx
from .errors import render, render_unexpected
from .negotiation import accepted
from .responses import CONTENT_TYPES
from .rest import parse_prefer, read_parts, search_parts

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Answer = tuple[int, list[tuple[str, str]], bytes]

# ASCII ids only (FHIR ids are [A-Za-z0-9-.]{1,64}): no decoding question, and no clash with
# the static routes ($validate, _history, _search, metadata) which Flask matches first.
_PATH = re.compile(r"/fhir(?:/(R4|R5))?/([A-Za-z]{1,64})(?:/([A-Za-z0-9.\-]{1,64}))?")
_TYPES = frozenset(STORED_TYPES)
_SIGNALS = (signals.request_started, signals.request_finished, signals.request_tearing_down,
            signals.appcontext_pushed, signals.appcontext_popped,
            signals.appcontext_tearing_down)
_FHIR_KEYS = (None, "fhir", "fhir_R4", "fhir_R5")  # hooks of the app and the FHIR blueprint


class _Status(dict[int, str]):
    def __missing__(self, status: int) -> str:
        value = self[status] = f"{status} {HTTP_STATUS_CODES[status].upper()}"
        return value


_STATUS = _Status()


class FastPath:
    """WSGI middleware over the Flask app's `wsgi_app`: see the module docstring."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.inner = app.wsgi_app  # Flask's own path: everything not answered here
        self._hooks = self._fhir_hooks()
        self._all_hooks = self._every_hook()
        # (release, Accept's version and media type, scheme, Host, server) -> the Ctx
        # make_ctx built for it: the same for every request of one client.
        self._contexts: dict[tuple[Any, ...], Ctx] = {}

    def _every_hook(self) -> tuple[dict[Any, list[Any]], ...]:
        app = self.app
        return tuple({k: list(v) for k, v in funcs.items()} for funcs in (
            app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
            app.url_value_preprocessors))

    def _fhir_hooks(self) -> tuple[Any, ...]:
        app = self.app
        return tuple(tuple(funcs.get(k, ())) for funcs in (
            app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
            app.url_value_preprocessors) for k in _FHIR_KEYS)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.inner(environ, start_response)
        status, headers, body = answer
        start_response(_STATUS[status], headers)
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]

    def _answer(self, environ: Environ) -> Answer | None:
        """(status, headers, body) when this request is one of ours, else None."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return None
        match = _PATH.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("CONTENT_TYPE"):
            return None
        release, rtype, rid = match.groups()
        config = self.app.config
        if (rtype not in _TYPES or config.get("SERVER_NAME") or config.get("TRUSTED_HOSTS")
                or not self._as_created()):
            return None
        query = environ.get("QUERY_STRING")
        params = _query(query) if query else []
        if params is None:
            return None
        try:
            negotiated = accepted(environ.get("HTTP_ACCEPT", ""))
            key = (release, negotiated.version, negotiated.mime, environ.get("wsgi.url_scheme"),
                   environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
                   environ.get("SERVER_PORT"))
            store = self.app.extensions["fhir_store"]
            c = self._contexts.get(key)  # type: ignore[assignment]
            if c is None or c.store is not store:
                if len(self._contexts) >= 256:  # bounded: the Host header is the client's
                    self._contexts.clear()
                c = self._contexts[key] = make_ctx(store, config["FHIR_ADAPTER"], environ,
                                                   negotiated.mime, release, negotiated.version)
            if rid is not None:
                args: dict[str, str] = {}
                for name, value in params:
                    args.setdefault(name, value)  # a MultiDict's get: the first value
                status, found, body = read_parts(c, rtype, rid, args,
                                                 environ.get("HTTP_IF_NONE_MATCH"),
                                                 environ.get("HTTP_IF_MODIFIED_SINCE"))
                headers = list(found.items())
                if body is None:  # 304: what werkzeug leaves of a Response's headers
                    remove_entity_headers(headers)
                    return status, headers, b""
            else:
                strict = parse_prefer(environ.get("HTTP_PREFER", "")).get("handling") == \
                    "strict"
                status, headers, body = 200, [], search_parts(c, rtype, params, strict)
        except FhirError as exc:
            return render(exc)
        except Exception as exc:  # noqa: BLE001 - answered as Flask's handler answers it
            return render_unexpected(exc)
        headers += [("Content-Type", CONTENT_TYPES[c.mime, c.version]),
                    ("Content-Length", str(len(body)))]
        return status, headers, body

    def _as_created(self) -> bool:
        """Whether Flask would run, for a FHIR route, only the hooks create_app installed
        (hooks of other blueprints, a dashboard's, do not count)."""
        app = self.app
        before, after, teardown, preprocessors = self._all_hooks
        return (((app.before_request_funcs == before and app.after_request_funcs == after
                  and app.teardown_request_funcs == teardown
                  and app.url_value_preprocessors == preprocessors)
                 or self._fhir_hooks() == self._hooks)
                and not any(app.teardown_appcontext_funcs)
                and not any(signal.receivers for signal in _SIGNALS))


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
