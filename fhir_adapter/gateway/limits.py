"""Input limits of the gateway: what one request may ask of the server, each a named setting
(FHIR_ADAPTER_<NAME>, defined with its default in fhir_adapter/limits.py, shared with the
pipeline) whose breach is a 4xx OperationOutcome naming it.

MAX_CONTENT_LENGTH (gateway/__init__.py) bounds the body; `GuardedFlask` holds a chunked body
(no Content-Length) to it too: refused whole with 413, never cut at the limit.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, current_app, has_app_context
from werkzeug.wsgi import ClosingIterator

from ..errors import BadRequest, FhirError, Issue, PayloadTooLarge
from ..limits import LIMITS, setting
from ..store.canonical import dumps

# A NUL cannot be stored (PostgreSQL refuses it in text) and lone surrogates cannot be
# encoded as UTF-8: neither is a FHIR string.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class LimitExceeded(BadRequest):
    """A request beyond a named input limit."""

    code = "too-costly"

    def __init__(self, name: str, limit: int, what: str, status: int = 400,
                 expression: str | None = None) -> None:
        message = (f"{what}: the limit is {limit} (setting FHIR_ADAPTER_{name})")
        super().__init__(message, [Issue("error", self.code, message, expression)])
        self.status = status


# The serving app's settings, set by Guard for each request: the fast path (fastpath.py)
# answers searches outside any Flask app context and must apply the same limits.
_SETTINGS: ContextVar[dict[str, Any] | None] = ContextVar("fhir_adapter_limits", default=None)


def limit(name: str) -> int:
    """The serving app's value of the limit `name` (outside any app and request: the
    environment's, as the pipeline reads it)."""
    conf = _SETTINGS.get()
    if conf is None and has_app_context():
        conf = current_app.config["FHIR_ADAPTER"]
    return setting(name, conf)


@contextmanager
def limits_of(conf: dict[str, Any]) -> Iterator[None]:
    """Apply the app settings `conf`'s limits to work done outside its requests (a job)."""
    token = _SETTINGS.set(conf)
    try:
        yield
    finally:
        _SETTINGS.reset(token)


def check_text(value: str, what: str, max_string: int | None = None) -> None:
    """400 for a search value, id or name that cannot be stored or is over-long."""
    max_string = limit("MAX_STRING_LENGTH") if max_string is None else max_string
    if len(value) > max_string:
        raise LimitExceeded("MAX_STRING_LENGTH", max_string,
                            f"{what} is {len(value)} characters long")
    if _UNSTORABLE.search(value):
        raise BadRequest(f"{what} contains a NUL character or a lone surrogate, which no "
                         "FHIR string may hold")


def check_json(value: Any) -> None:
    """413 for a body nested deeper than MAX_DEPTH or with a string over MAX_STRING_LENGTH;
    400 for a string no store can hold. Iterative: depth never costs Python stack."""
    max_depth, max_string = limit("MAX_DEPTH"), limit("MAX_STRING_LENGTH")
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict):
            items: Iterable[tuple[Any, Any]] = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth > max_depth:
            raise LimitExceeded("MAX_DEPTH", max_depth,
                                f"the body nests objects and arrays deeper than {max_depth}",
                                413, (path[:200] + "...") if len(path) > 200 else path or None)
        for key, child in items:
            where = f"{path}[{key}]" if isinstance(key, int) else (
                f"{path}.{key}" if path else str(key))
            for text in (key, child):
                if isinstance(text, str):
                    if len(text) > max_string:
                        raise LimitExceeded("MAX_STRING_LENGTH", max_string,
                                            f"a string of {len(text)} characters", 413, where)
                    if _UNSTORABLE.search(text):
                        raise BadRequest(f"{where} contains a NUL character or a lone "
                                         "surrogate, which no FHIR string may hold",
                                         [Issue("error", "invalid", "a NUL character or a "
                                                "lone surrogate is not allowed in a FHIR "
                                                "string", where)])
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, where))


def check_search(params: list[tuple[str, str]]) -> None:
    """400 for more than MAX_PARAMS parameters or a value no store can hold."""
    max_params = limit("MAX_PARAMS")
    if len(params) > max_params:
        raise LimitExceeded("MAX_PARAMS", max_params, f"the search has {len(params)} parameters")
    max_string = limit("MAX_STRING_LENGTH")
    for name, value in params:
        check_text(name, "a search parameter name", max_string)
        check_text(value, f"the value of {name}", max_string)


def check_offset(number: int) -> None:
    """400 for an _offset beyond MAX_OFFSET (deep pages cost a scan of every row before)."""
    if number > limit("MAX_OFFSET"):
        raise LimitExceeded("MAX_OFFSET", limit("MAX_OFFSET"), f"_offset={number} is too deep")


def check_entries(count: int) -> None:
    """413 for a Bundle of more than MAX_ENTRIES entries."""
    if count > limit("MAX_ENTRIES"):
        raise LimitExceeded("MAX_ENTRIES", limit("MAX_ENTRIES"),
                            f"the Bundle has {count} entries", 413)


# --- WSGI: what must be decided before Flask reads the request --------------------------

Environ = dict[str, Any]
_SPOOL = 1024 * 1024  # a chunked body is held in memory up to this, then in a temporary file
_BODY_METHODS = ("POST", "PUT", "PATCH")


def _refuse(start_response: Callable[..., Any], status: str, error: FhirError
            ) -> list[bytes]:
    body = dumps(error.outcome())
    start_response(status, [("Content-Type", "application/fhir+json; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]


class GuardedFlask(Flask):
    """The gateway's Flask app: before any WSGI layer (fastpath.py's included), 414 for a
    URL over MAX_URL_LENGTH, and a chunked body read in full: over MAX_CONTENT_LENGTH ->
    413 (werkzeug would otherwise hand the app the first MAX_CONTENT_LENGTH bytes as if they
    were the whole body); within it -> passed on with a Content-Length, as if the client had
    sent one. Every layer then sees this app's limits (`limit`)."""

    def __call__(self, environ: Environ, start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        conf = self.config["FHIR_ADAPTER"]
        max_url = int(conf.get("MAX_URL_LENGTH", LIMITS["MAX_URL_LENGTH"]))
        length = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if length > max_url:
            return _refuse(start_response, "414 URI Too Long", LimitExceeded(
                "MAX_URL_LENGTH", max_url, f"the URL is {length} bytes long", 414))
        if (environ.get("REQUEST_METHOD") in _BODY_METHODS
                and not environ.get("CONTENT_LENGTH")
                and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()):
            max_body = int(conf["MAX_CONTENT_LENGTH"])
            spooled = self._spool(environ["wsgi.input"], max_body)
            if spooled is None:
                return _refuse(start_response, "413 Content Too Large", PayloadTooLarge(
                    f"the request body is larger than this server accepts: the limit is "
                    f"{max_body} bytes (setting FHIR_ADAPTER_MAX_CONTENT_LENGTH); "
                    "nothing was stored"))
            body, size = spooled
            environ["wsgi.input"] = body
            environ["CONTENT_LENGTH"] = str(size)
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            token = _SETTINGS.set(conf)
            try:  # the spooled body goes when the response is done with
                return ClosingIterator(self.wsgi_app(environ, start_response), body.close)
            finally:
                _SETTINGS.reset(token)
        token = _SETTINGS.set(conf)
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            _SETTINGS.reset(token)

    @staticmethod
    def _spool(stream: Any, max_body: int) -> tuple[Any, int] | None:
        """The whole body in a spooled file and its size; None when it is over the limit."""
        out = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - handed on
        size = 0
        while True:
            chunk = stream.read(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > max_body:
                out.close()
                return None
            out.write(chunk)
        out.seek(0)
        return out, size
