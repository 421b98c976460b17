"""The one gate every request passes, whichever path answers it (fastpath.py or Flask): a
WSGI middleware outside both. It gives the request its id, adds CORS and security headers,
writes the access log line and, with authorization on (AUTH=smart, see fhir_adapter/auth),
checks the bearer token (401 + WWW-Authenticate), applies the client's rate limit (429 +
Retry-After), makes the client's grant current for the interactions' scope checks
(auth/access.py: 403), marks responses `Cache-Control: no-store` and records an AuditEvent.

With auth on, every path needs a valid token except OPEN_PATHS (the CapabilityStatement,
the SMART discovery document, the token endpoint) and CORS preflights. Other blueprints
(the dashboard) are covered by the same rule; `auth_enabled` and `authorize` below let them
check a token themselves (see fhir_adapter/auth/__init__.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from ..auth import access
from ..auth.access import TooManyRequests, Unauthorized
from ..auth.audit import AuditLog
from ..auth.ratelimit import RateLimiter
from ..auth.scopes import Grant
from ..auth.tokens import Principal, TokenError, Tokens
from ..errors import FhirError
from .errors import render
from .hooks import access_log, uuid4_hex

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
CORS_EXPOSE = "Location, ETag, Last-Modified, Content-Location, X-Request-Id"
_ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
_ALLOW_HEADERS = ("Accept, Content-Type, If-Match, If-None-Match, If-None-Exist, Prefer, "
                  "Authorization")
_RELEASE = r"/fhir(?:/R4|/R5)?"
OPEN_PATHS = re.compile(_RELEASE + r"/(?:metadata|\.well-known/smart-configuration|auth/token)")
# The dashboard's pages and scripts hold no data (their scripts read the FHIR API, which
# asks for a token): the dashboard answers them itself, off by default with auth on.
PAGE_PATHS = re.compile(r"/|/studies/[A-Za-z0-9.\-]{1,64}|/dashboard/static/[^?#]+")
TOKEN_PATH = re.compile(_RELEASE + r"/auth/token")
_TARGET = re.compile(_RELEASE + r"/([A-Z][A-Za-z]{0,63})(?:/([A-Za-z0-9.\-]{1,64}))?")
_NOSNIFF = ("X-Content-Type-Options", "nosniff")
_NO_STORE = ("Cache-Control", "no-store")
NOBODY = Principal("", Grant("", {}), float("inf"))  # open paths with auth on


@dataclass
class Auth:
    """What authorization runs with in one app (app.extensions["fhir_auth"])."""

    tokens: Tokens
    audit: AuditLog
    limiter: RateLimiter | None


def auth_enabled(app: Flask) -> bool:
    """Whether the app requires authorization (AUTH=smart)."""
    return app.extensions.get("fhir_auth") is not None


def authorize(app: Flask, authorization: str | None) -> Principal:
    """The principal of an Authorization header value: UNRESTRICTED with auth off; raises
    Unauthorized (401) without a valid bearer token."""
    auth: Auth | None = app.extensions.get("fhir_auth")
    if auth is None:
        return access.UNRESTRICTED
    if not authorization or authorization[:7].lower() != "bearer ":
        raise Unauthorized("this server needs a bearer token (SMART Backend Services: see "
                           ".well-known/smart-configuration)",
                           headers={"WWW-Authenticate": 'Bearer realm="fhir-adapter"'})
    try:
        return auth.tokens.verify(authorization[7:].strip())
    except TokenError as exc:
        raise Unauthorized(exc.description, headers={"WWW-Authenticate": (
            f'Bearer realm="fhir-adapter", error="invalid_token", '
            f'error_description="{exc.description.replace(chr(34), chr(39))}"')}) from exc


def _origins(setting: Any) -> frozenset[str] | None:
    """CORS_ORIGINS: '' (CORS off: an empty set), '*' (None: any origin) or a list."""
    allowed = str(setting or "").strip()
    if allowed == "*":
        return None
    return frozenset(o.strip() for o in allowed.split(",") if o.strip())


class Guard:
    """The WSGI middleware: see the module docstring."""

    def __init__(self, app: Flask, inner: Callable[[Environ, StartResponse], Iterable[bytes]],
                 conf: dict[str, Any]) -> None:
        self.app = app
        self.inner = inner
        self.origins = _origins(conf.get("CORS_ORIGINS"))
        self.auth: Auth | None = app.extensions.get("fhir_auth")
        if self.auth is not None and self.origins is None:
            raise ValueError("CORS_ORIGINS='*' cannot be combined with AUTH=smart: list the "
                             "origins of the web apps allowed to call this server")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = environ.get("HTTP_X_REQUEST_ID") or ""
        if not request_id or "\n" in request_id or "\r" in request_id or len(request_id) > 200:
            request_id = uuid4_hex()
        environ["fhir_adapter.request_id"] = request_id
        extra = [_NOSNIFF, ("X-Request-Id", request_id), *self._cors(environ)]
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        seen: list[int] = [0]

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[0] = int(status[:3])
            return start_response(status, headers + extra, exc_info)

        auth = self.auth
        if auth is None:
            body = self.inner(environ, respond)
            access_log(method, path, seen[0], started, request_id)
            return body
        principal = NOBODY
        try:
            if (method != "OPTIONS" and OPEN_PATHS.fullmatch(path) is None
                    and PAGE_PATHS.fullmatch(path) is None):
                principal = authorize(self.app, environ.get("HTTP_AUTHORIZATION"))
                extra.append(_NO_STORE)
                wait = auth.limiter.take(principal.client_id) if auth.limiter else 0
                if wait:
                    raise TooManyRequests(f"rate limit of client {principal.client_id} "
                                          f"reached; retry in {int(wait)} s",
                                          headers={"Retry-After": str(int(wait))})
        except FhirError as exc:
            status, headers, payload = render(exc)
            respond(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
            body: Iterable[bytes] = [payload]
            detail = exc.message
        else:
            token = access.enter(principal)
            try:
                body = self.inner(environ, respond)
            finally:
                access.leave(token)
            detail = ""
        access_log(method, path, seen[0], started, request_id)
        if TOKEN_PATH.fullmatch(path) is None and method != "OPTIONS":
            target = _TARGET.fullmatch(path)
            rtype, rid = target.groups() if target else ("", None)
            auth.audit.record("rest", principal.client_id, method, path,
                              environ.get("QUERY_STRING", ""), rtype, rid or "", seen[0],
                              detail, request_id)
        return body

    def _cors(self, environ: Environ) -> list[tuple[str, str]]:
        origins = self.origins
        if origins is not None and not origins:
            return []  # CORS off
        origin = environ.get("HTTP_ORIGIN")
        if origins is None:
            out = [("Access-Control-Allow-Origin", "*")]
        elif origin and origin in origins:
            out = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        else:
            return []
        out.append(("Access-Control-Expose-Headers", CORS_EXPOSE))
        if (environ.get("REQUEST_METHOD") == "OPTIONS"
                and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")):
            out += [("Access-Control-Allow-Methods", _ALLOW_METHODS),
                    ("Access-Control-Allow-Headers",
                     environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS") or _ALLOW_HEADERS),
                    ("Access-Control-Max-Age", "600")]
        return out
