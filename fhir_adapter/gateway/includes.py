"""`_include` and `_revinclude` (R4 search.html#include): resources the matches reference, and
resources that reference the matches, answered from the store's reference index (the same
rows the reference search parameters use, so no stored body is parsed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from ..errors import BadRequest, Issue
from ..store.base import Stored
from ..store.searchparams import search_params
from .context import STORED_TYPES, Ctx


def _spec(value: str, kind: str) -> tuple[str, str, str | None]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadRequest(f"{kind}={value}: expected SourceType:parameter[:TargetType]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _params(c: Ctx, source: str, name: str) -> list[str]:
    """The reference parameters `name` stands for ('*' = all of them)."""
    if name != "*":
        return [name]
    return sorted(code for code, p in search_params(c.version, source).items()
                  if p.type == "reference")


def _capped(c: Ctx, found: list[Stored], what: str, rest: str | None,
            notes: list[Issue]) -> list[Stored]:
    """At most MAX_COUNT of `found` (fetched with one more than that): beyond it, a warning
    saying so and where the rest can be paged."""
    if len(found) <= c.max_count:
        return found
    where = f" page them with {rest}" if rest else " ask for fewer matches (_count)"
    notes.append(Issue("warning", "too-costly",
                       f"{what} found more than {c.max_count} resources (MAX_COUNT): only "
                       f"the first {c.max_count} are included;{where}", what))
    return found[:c.max_count]


def _forward(c: Ctx, matches: Sequence[Stored], value: str, notes: list[Issue]
             ) -> list[Stored]:
    source, name, target = _spec(value, "_include")
    sources = [s for s in matches if s.resource_type == source]
    if not sources:
        return []
    return [found for param in _params(c, source, name)
            for found in _capped(c, c.store.references_from(
                sources, c.version, param, target, limit=c.max_count + 1),
                f"_include={value}", None, notes)]


def _reverse(c: Ctx, searched: str, matches: Sequence[Stored], value: str,
             notes: list[Issue]) -> list[Stored]:
    source, name, target = _spec(value, "_revinclude")
    if source not in STORED_TYPES:
        raise BadRequest(f"_revinclude={value}: {source} is not served here")
    if target not in (None, searched) or not matches:
        return []
    # Bounded like a page: more (e.g. a study's thousands of subjects) are paged by searching
    # ResearchSubject?study=ResearchStudy/<id> instead, which the warning names.
    targets = ",".join(f"{m.resource_type}/{m.id}" for m in matches)
    return [found for param in _params(c, source, name)
            for found in _capped(c, c.store.referencing(source, c.version, param, matches,
                                                        limit=c.max_count + 1),
                                 f"_revinclude={value}",
                                 f"{c.base}/{source}?{urlencode({param: targets})}", notes)]


ROUNDS = 5  # _include:iterate / _revinclude:iterate rounds; more answers 400, never cut short


def _step(c: Ctx, group: Sequence[Stored], include: Iterable[str],
          revinclude: Iterable[str], notes: list[Issue]) -> list[Stored]:
    found = [r for v in include for r in _forward(c, group, v, notes)]
    by_type: dict[str, list[Stored]] = {}
    for stored in group:
        by_type.setdefault(stored.resource_type, []).append(stored)
    for value in revinclude:
        for rtype, members in by_type.items():
            found += _reverse(c, rtype, members, value, notes)
    return found


def included(c: Ctx, searched: str, matches: Sequence[Stored], include: Iterable[str],
             revinclude: Iterable[str], iterate: Iterable[str] = (),
             rev_iterate: Iterable[str] = ()) -> tuple[list[Stored], list[Issue]]:
    """Every resource the includes ask for, once each, none of them already a match (at
    most MAX_COUNT per include), and warnings where an include found more. `iterate` /
    `rev_iterate` (the :iterate ones) apply to the matches and then again to what each
    round included, until nothing new is found. `_include=*` is every reference parameter
    of the searched type."""
    notes: list[Issue] = []
    include = [f"{searched}:*" if v == "*" else v for v in include]
    iterate = [f"{searched}:*" if v == "*" else v for v in iterate]
    if not (include or revinclude or iterate or rev_iterate):
        return [], notes
    seen = {(s.resource_type, s.id) for s in matches}
    out: list[Stored] = []
    group: Sequence[Stored] = matches
    for round_ in range(ROUNDS + 1):
        if round_ == 0:
            found = _step(c, group, [*include, *iterate], [*revinclude, *rev_iterate], notes)
        else:
            found = _step(c, group, iterate, rev_iterate, notes)
        new = []
        for stored in found:
            key = (stored.resource_type, stored.id)
            if key not in seen:
                seen.add(key)
                new.append(stored)
        out += new
        if not new or not (iterate or rev_iterate):
            return out, notes
        group = new
    raise BadRequest(f"_include:iterate / _revinclude:iterate still found new resources "
                     f"after {ROUNDS} rounds; narrow the search")
