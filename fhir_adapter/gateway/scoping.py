"""Scope checks of a search, before it runs: the searched type needs `s`; a chained
parameter (`subject:Patient.organization.name=`, `subject.name=`) or `_has` (nested too)
needs `s` on every type it looks into, link by link (a match reveals their content: an
untyped link looks into each target type that has the next parameter, as store/chains.py
searches them); `_include` needs `r` on every type it can return and `_revinclude` on its
source type. A search asking for more than the token allows is refused with 403: never
answered with some of what it asked for left out in silence."""

from __future__ import annotations

from ..auth.access import UNRESTRICTED, current, require
from ..store.chains import MAX_DEPTH, is_chain, is_reverse, served_targets
from ..store.searchparams import RESOURCE_TYPES, search_params
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


def _looked_into(c: Ctx, rtype: str, name: str, depth: int = 0) -> list[tuple[str, str]]:
    """(type, why) of every type that parameter `name` of `rtype` looks into through its
    links (none for a plain parameter). Unknown parts, and links beyond MAX_DEPTH, look into
    nothing: the search itself answers them with 400 (or leaves them out, lenient)."""
    if depth > MAX_DEPTH:
        return []
    if is_reverse(name):
        parts = name.split(":", 3)
        if len(parts) != 4 or parts[1] not in RESOURCE_TYPES:
            return []
        source = parts[1]
        return [(source, f"searching {source} through _has"),
                *_looked_into(c, source, parts[3], depth + 1)]
    if not is_chain(name):
        return []
    head, _, tail = name.partition(".")
    code, _, typed = head.partition(":")
    following = tail.partition(".")[0].partition(":")[0]
    param = search_params(c.version, rtype).get(code) if rtype in RESOURCE_TYPES else None
    if param is None or param.type != "reference":
        return []
    out = []
    for target in [typed] if typed else served_targets(param):
        if typed or is_reverse(tail) or following in search_params(c.version, target):
            out += [(target, f"searching {target} through the chain {name}"),
                    *_looked_into(c, target, tail, depth + 1)]
    return out


def check_search(c: Ctx, resource_type: str, filters: list[tuple[str, str]],
                 include: list[str], revinclude: list[str]) -> None:
    """403 unless the current token may run this search and read all it may return."""
    if current() is UNRESTRICTED:
        return
    require(resource_type, "s")
    for name, _value in filters:
        for rtype, why in _looked_into(c, resource_type, name):
            require(rtype, "s", why)
    for value in include:
        # a bare `*` is every reference parameter of the searched type (gateway/includes.py)
        parts = [resource_type, "*"] if value == "*" else value.split(":")
        if len(parts) in (2, 3):
            for rtype in _targets(c, parts[0], parts[1], parts[2] if len(parts) == 3 else None):
                require(rtype, "r", f"_include={value} (it can return {rtype})")
    for value in revinclude:
        source = value.split(":", 1)[0]
        require(source, "r", f"_revinclude={value} (it returns {source})")
