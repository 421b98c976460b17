"""Scope checks of a search, before it runs: the searched type needs `s`; a chained
parameter (`subject:Patient.name=`, `subject.name=`) or `_has` needs `s` on the types it
looks into (a match reveals their content); `_include` needs `r` on every type it can
return and `_revinclude` on its source type. A search asking for more than the token allows
is refused with 403: never answered with some of what it asked for left out in silence."""

from __future__ import annotations

from ..auth.access import UNRESTRICTED, current, require
from ..store.searchparams import search_params
from .context import STORED_TYPES, Ctx


def _targets(c: Ctx, source: str, name: str, target: str | None) -> list[str]:
    """The types a reference parameter of `source` can point to ('*': any of them)."""
    if target:
        return [target]
    params = search_params(c.version, source) if source in STORED_TYPES else {}
    chosen = [p for code, p in params.items()
              if p.type == "reference" and (name == "*" or code == name)]
    found = {t for p in chosen for t in (p.targets or STORED_TYPES)}
    return sorted(found & set(STORED_TYPES)) or ([] if chosen else [])


def check_search(c: Ctx, resource_type: str, filters: list[tuple[str, str]],
                 include: list[str], revinclude: list[str]) -> None:
    """403 unless the current token may run this search and read all it may return."""
    if current() is UNRESTRICTED:
        return
    require(resource_type, "s")
    for name, _value in filters:
        if name.startswith("_has:"):
            parts = name.split(":")
            if len(parts) > 1:
                require(parts[1], "s", f"searching {parts[1]} through _has")
            continue
        head, dot, _rest = name.partition(".")
        if not dot:
            continue
        param, _, modifier = head.partition(":")
        for rtype in _targets(c, resource_type, param, modifier or None):
            require(rtype, "s", f"searching {rtype} through the chain {name}")
    for value in include:
        parts = value.split(":")
        if len(parts) in (2, 3):
            for rtype in _targets(c, parts[0], parts[1], parts[2] if len(parts) == 3 else None):
                require(rtype, "r", f"_include={value} (it can return {rtype})")
    for value in revinclude:
        source = value.split(":", 1)[0]
        require(source, "r", f"_revinclude={value} (it returns {source})")
