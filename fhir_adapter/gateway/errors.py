"""One place where every error becomes an OperationOutcome: our FhirError hierarchy, werkzeug's
HTTPExceptions (unknown routes, wrong methods, oversized bodies) and anything unexpected (500:
the traceback goes to the log, the client learns nothing of internals)."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from ..errors import FhirError, Issue
from .negotiation import FHIR_JSON
from .responses import outcome_bytes

log = logging.getLogger("fhir_adapter.gateway")

# HTTP status -> OperationOutcome issue type (R4 valueset-issue-type)
_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
                405: "not-supported", 406: "not-supported", 409: "conflict", 410: "deleted",
                412: "conflict", 413: "too-costly", 415: "not-supported", 422: "processing",
                429: "throttled"}


def error_response(status: int, issues: list[Issue], headers: dict[str, str] | None = None
                   ) -> Response:
    """An OperationOutcome response; always fhir+json, whatever the request asked for."""
    response = Response(outcome_bytes(issues), status=status,
                        content_type=f"{FHIR_JSON}; charset=utf-8")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render(exc: FhirError) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of a FhirError's OperationOutcome: what Flask's handler sends,
    for the WSGI layers in front of Flask (the fast path, the security guard)."""
    body = outcome_bytes(exc.issues)
    return exc.status, [("Content-Type", f"{FHIR_JSON}; charset=utf-8"),
                        ("Content-Length", str(len(body))), *exc.headers.items()], body


def render_unexpected(exc: Exception) -> tuple[int, list[tuple[str, str]], bytes]:
    """The same for an unexpected exception: logged with an incident id, a 500 that says
    nothing of internals."""
    incident = uuid.uuid4().hex[:12]
    log.error("unhandled error, incident %s", incident, exc_info=exc)
    body = outcome_bytes([Issue("fatal", "exception", f"internal server error (incident "
                                                      f"{incident})")])
    return 500, [("Content-Type", f"{FHIR_JSON}; charset=utf-8"),
                 ("Content-Length", str(len(body)))], body


def _fhir_error(exc: FhirError) -> Response:
    status, headers, body = render(exc)
    return Response(body, status=status, headers=headers)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _ISSUE_CODES.get(status, "exception" if status >= 500 else "invalid")
    message = exc.description or exc.name
    if status == 404:
        message = "no such FHIR endpoint (the FHIR base is /fhir; /fhir/R5 serves FHIR R5)"
    if status == 413:
        message = "the request body is larger than this server accepts (MAX_CONTENT_LENGTH)"
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return error_response(status, [Issue("error", code, message)], headers)


def _unexpected(exc: Exception) -> Response:
    # The id ties the client's report to the logged traceback without exposing it.
    status, headers, body = render_unexpected(exc)
    return Response(body, status=status, headers=headers)


def init_app(app: Flask) -> None:
    """Register the handlers on `app`."""
    app.register_error_handler(FhirError, _fhir_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
