"""SMART scopes (SMART App Launch 2.x, "Scopes and Launch Context"): v2 `system/Type.cruds`
and v1 `system/Type.read|write|*`, `*` for any type. A granted scope set answers "may this
client do action A on type T" for the five SMART actions:

    c create   r read, vread, instance history   u update, patch   d delete
    s search, type and system history

Only `system/` scopes grant anything here: this is a backend-services server, with no user
or patient context; `patient/` and `user/` scopes are ignored when asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ACTIONS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"system/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]+)(?:\?.*)?")


def parse_scope(scope: str) -> tuple[str, str] | None:
    """'system/Patient.rs' -> ('Patient', 'rs'); v1 forms map onto v2 actions; None when the
    string is not a system scope this server grants (openid, patient/..., a typo)."""
    match = _SCOPE.fullmatch(scope)
    if match is None:
        return None
    rtype, actions = match.groups()
    if actions in _V1:
        return rtype, _V1[actions]
    # v2 letters must be a subsequence of "cruds", in order, each once (SMART 2.0 says so).
    if not actions or any(a not in ACTIONS for a in actions) or list(actions) != sorted(
            set(actions), key=ACTIONS.index):
        return None
    return rtype, actions


@dataclass(frozen=True)
class Grant:
    """What one token allows: {type or '*': actions}."""

    scope: str  # the scope string as granted, for the audit and the token response
    allowed: dict[str, frozenset[str]]

    @classmethod
    def of(cls, scopes: Iterable[str]) -> Grant:
        """The grant a list of scope strings gives; unknown strings grant nothing."""
        allowed: dict[str, set[str]] = {}
        kept: list[str] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kept.append(scope)
            allowed.setdefault(parsed[0], set()).update(parsed[1])
        return cls(" ".join(kept), {t: frozenset(a) for t, a in allowed.items()})

    def can(self, resource_type: str, action: str) -> bool:
        """Whether `action` (one of c r u d s) is allowed on `resource_type`."""
        return (action in self.allowed.get(resource_type, ())
                or action in self.allowed.get("*", ()))

    def types(self, action: str, among: Iterable[str]) -> list[str]:
        """The types of `among` on which `action` is allowed, in their order."""
        return [t for t in among if self.can(t, action)]


def granted(requested: str, registered: str) -> str:
    """The scopes of `requested` that `registered` covers (a narrower request is honoured:
    asking system/Patient.r under system/Patient.rs gets system/Patient.r)."""
    allowed = Grant.of(registered.split())
    out = []
    for scope in requested.split():
        parsed = parse_scope(scope)
        if parsed is None:
            continue
        rtype, actions = parsed
        if all(allowed.can(rtype, a) if rtype != "*" else "*" in allowed.allowed
               and a in allowed.allowed["*"] for a in actions):
            out.append(scope)
    return " ".join(out)
