"""Access control inside a request: who the request acts for (set once per request by the
gateway's guard, gateway/security.py, on the fast path and on Flask's alike) and the checks
every interaction makes with `require`.

Without authorization (auth off) the principal is `UNRESTRICTED` and every check passes.
The principal lives in a context variable: each thread of a threaded server has its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar

from ..errors import FhirError
from .scopes import Grant
from .tokens import Principal


class Unauthorized(FhirError):
    """401: no valid bearer token (the response carries WWW-Authenticate)."""

    status, code = 401, "login"


class Forbidden(FhirError):
    """403: the token's scopes do not allow this interaction."""

    status, code = 403, "forbidden"


class TooManyRequests(FhirError):
    """429: this client's rate limit is used up (the response carries Retry-After)."""

    status, code = 429, "throttled"


UNRESTRICTED = Principal("", Grant("*", {"*": frozenset("cruds")}), float("inf"))
_current: ContextVar[Principal] = ContextVar("fhir_adapter_principal", default=UNRESTRICTED)
_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def current() -> Principal:
    """The principal of the request being served (UNRESTRICTED when auth is off)."""
    return _current.get()


def enter(principal: Principal) -> object:
    """Make `principal` current; the token to pass to `leave` when the request ends."""
    return _current.set(principal)


def leave(token: object) -> None:
    """Undo `enter`."""
    _current.reset(token)  # type: ignore[arg-type]


def allowed(resource_type: str, action: str) -> bool:
    """Whether the current principal may do `action` (c r u d s) on `resource_type`."""
    principal = _current.get()
    return principal is UNRESTRICTED or principal.grant.can(resource_type, action)


def require(resource_type: str, action: str, what: str = "") -> None:
    """403 unless the current principal may do `action` on `resource_type`."""
    principal = _current.get()
    if principal is UNRESTRICTED or principal.grant.can(resource_type, action):
        return
    raise Forbidden(f"{what or _WORDS[action]} on {resource_type} is not allowed: the token's "
                    f"scopes ({principal.grant.scope or 'none'}) do not include "
                    f"system/{resource_type}.{action}")


def require_all(resource_types: Iterable[str], action: str, what: str) -> None:
    """403 unless `action` is allowed on every one of `resource_types`."""
    for resource_type in resource_types:
        require(resource_type, action, what)


def permitted(resource_types: Iterable[str], action: str) -> list[str]:
    """Those of `resource_types` the current principal may do `action` on."""
    principal = _current.get()
    if principal is UNRESTRICTED:
        return list(resource_types)
    return principal.grant.types(action, resource_types)
