"""The search interaction (R4 search.html): result parameters, paging links, `_include` /
`_revinclude`, and the searchset Bundle assembled from stored bytes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlencode

import fhir_adapter.gateway.elements as elements

from ..errors import BadRequest, Issue
from ..ids import dashed
from ..store.base import SearchQuery, Stored
from ..store.canonical import dumps
from .bundle import assemble
from .context import Ctx
from .hooks import uuid4_hex
from .includes import included
from .limits import check_offset
from .limits import check_search as check_limits
from .responses import outcome_bytes
from .scoping import check_search

# Result parameters handled here; every other parameter filters and goes to the store.
RESULT_PARAMS = ("_count", "_offset", "_sort", "_total", "_summary", "_elements", "_include",
                 "_revinclude", "_format", "_pretty", "_totalMethod")
# Recognised but not supported: 400, or ignored and reported with Prefer: handling=lenient,
# like unknown filters.
UNSUPPORTED = ("_contained", "_containedType", "_score", "_graph", "_list", "_query", "_text",
               "_content", "_filter")
TOTALS = ("none", "estimate", "accurate")
_SEARCH_MODE = {mode: b',"search":' + dumps({"mode": mode}) + b"}"
                for mode in ("match", "include", "outcome")}
_FIRST_ENTRY, _NEXT_ENTRY = b'{"fullUrl":', b',{"fullUrl":'
_WHOLE = re.compile(r"\s*[+-]?[0-9]{1,30}\s*")


@dataclass
class Request:
    """A search request split into filters and result parameters."""

    resource_type: str
    filters: list[tuple[str, str]] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    sort: list[str] = field(default_factory=list)
    total: str = "accurate"
    summary: str | None = None
    elements: str | None = None
    include: list[str] = field(default_factory=list)
    revinclude: list[str] = field(default_factory=list)
    iterate: list[str] = field(default_factory=list)  # _include:iterate
    rev_iterate: list[str] = field(default_factory=list)  # _revinclude:iterate
    ignored: list[str] = field(default_factory=list)
    echo: list[tuple[str, str]] = field(default_factory=list)  # result params for links


def _int(name: str, value: str) -> int:
    if not _WHOLE.fullmatch(value):  # int() also takes '١' and '1_000'
        raise BadRequest(f"{name}={value} is not a whole number")
    number = int(value)
    if number < 0:
        raise BadRequest(f"{name}={value} must not be negative")
    return number


def _include(req: Request, name: str, value: str) -> None:
    base, _, modifier = name.partition(":")
    if modifier not in ("", "iterate"):
        raise BadRequest(f"{name} is not supported (the modifier is :iterate)")
    reverse = base == "_revinclude"
    target = ((req.rev_iterate if reverse else req.iterate) if modifier
              else (req.revinclude if reverse else req.include))
    target.append(value)


def parse(c: Ctx, resource_type: str, params: list[tuple[str, str]], lenient: bool) -> Request:
    """Split and check the parameters; `_count` is capped at MAX_COUNT. A parameter this
    server does not support is a 400 (as HAPI answers) unless `lenient` (Prefer:
    handling=lenient): then it is left out and the Bundle says so."""
    check_limits(params)
    req = Request(resource_type, count=c.default_count)
    for name, value in params:
        base = name.split(":", 1)[0]
        if base in UNSUPPORTED:
            if not lenient:
                raise BadRequest(f"search parameter {name} is not supported here (send "
                                 "Prefer: handling=lenient to have it ignored)")
            req.ignored.append(name)
        elif base not in RESULT_PARAMS:
            req.filters.append((name, value))
        elif base == "_count":
            req.count = min(_int(name, value), c.max_count)
        elif base == "_offset":
            req.offset = _int(name, value)
            check_offset(req.offset)
        elif base == "_sort":
            req.sort = [s.strip() for s in value.split(",") if s.strip()]
        elif base == "_total":
            if value not in TOTALS:
                raise BadRequest(f"_total={value} is not one of {', '.join(TOTALS)}")
            req.total = value
        elif base == "_summary":
            req.summary = value
        elif base == "_elements":
            req.elements = value
        elif base in ("_include", "_revinclude"):
            _include(req, name, value)
        if base in ("_sort", "_total", "_summary", "_elements", "_include", "_revinclude"):
            req.echo.append((name, value))
    elements.check(req.summary, req.elements)
    # :iterate includes return types too: the token must be able to read them all
    check_search(c, resource_type, req.filters, [*req.include, *req.iterate],
                 [*req.revinclude, *req.rev_iterate])
    if req.summary == "count":
        req.count = 0
    return req


def links(c: Ctx, req: Request, used: list[tuple[str, str]], total: int | None,
          more: bool) -> list[dict[str, str]]:
    """self, first, previous, next, last: absolute, from the public base URL."""
    # The links differ in _offset only: the rest is encoded once.
    head = f"{c.base}/{req.resource_type}?" + _encoded((*used, *req.echo,
                                                         ("_count", str(req.count))))

    def link(offset: int) -> str:
        return f"{head}&_offset={offset}" if offset else head

    out = [{"relation": "self", "url": link(req.offset)}]
    if req.count == 0:
        return out
    out.append({"relation": "first", "url": link(0)})
    if req.offset > 0:
        out.append({"relation": "previous", "url": link(max(req.offset - req.count, 0))})
    if more:
        out.append({"relation": "next", "url": link(req.offset + req.count)})
    if total is not None and total > 0:
        out.append({"relation": "last", "url": link(((total - 1) // req.count) * req.count)})
    return out


@lru_cache(maxsize=256)  # clients repeat their searches; urlencode is a share of each
def _encoded(params: tuple[tuple[str, str], ...]) -> str:
    return urlencode(params)


def resource_bytes(c: Ctx, req: Request, stored: Stored) -> bytes | None:
    """A stored resource as this request wants it: its version, subsetted if asked; None when
    it has no representation in the requested version."""
    body = stored.body.get(c.version)
    if body is None:
        return None
    return elements.subset_bytes(body, c.version, req.summary, req.elements)


def run(c: Ctx, req: Request, lenient: bool) -> bytes:
    """Execute a parsed search; the searchset Bundle as bytes. What was left out (lenient:
    unknown parameters; includes beyond MAX_COUNT) is said in an OperationOutcome entry."""
    # One extra match tells whether a next page exists when no total is counted.
    query = SearchQuery(req.resource_type, c.version, list(req.filters),
                        count=req.count + (1 if req.count else 0), offset=req.offset,
                        sort=req.sort, total=req.total, strict=not lenient)  # type: ignore[arg-type]
    subset = elements.wanted(req.summary, req.elements)
    # A plain search takes its matches as (id, bytes) pairs where the store offers them
    # (SqlStore.search_rows: no Stored built per match); everything else as Stored.
    rows_of = getattr(c.store, "search_rows", None)
    includes = req.include or req.revinclude or req.iterate or req.rev_iterate
    page = None if subset or includes or rows_of is None else rows_of(query)
    if page is None:
        result = c.store.search(query)
        found = list(result.matches)
        total, ignored, count = result.total, set(result.ignored) | set(req.ignored), len(found)
    else:
        rows, total = page
        found, ignored, count = [], set(req.ignored), len(rows)
    more = count > req.count if req.count else False
    used = [(k, v) for k, v in req.filters if k not in ignored]
    total = total if req.total != "none" or req.count == 0 else None
    if total is not None and req.count:
        more = req.offset + min(count, req.count) < total
    parts: list[bytes] = []
    notes = [Issue("warning", "not-supported", f"search parameter {name} is not supported: "
                   "ignored (Prefer: handling=lenient)", name) for name in sorted(ignored)]
    if page is not None:
        _entries(parts, c.base, ((req.resource_type, rid, body) for rid, body in rows[:req.count]),
                 _SEARCH_MODE["match"])
    else:
        found = found[:req.count]
        extra, capped = included(c, req.resource_type, found, req.include, req.revinclude,
                                 req.iterate, req.rev_iterate)
        notes += capped
        for mode, group in (("match", found), ("include", extra)):
            _entries(parts, c.base, ((s.resource_type, s.id, resource_bytes(c, req, s) if subset
                                      else s.body.get(c.version)) for s in group),
                     _SEARCH_MODE[mode])
    if notes:
        parts += (_NEXT_ENTRY, dumps(f"urn:uuid:{dashed(uuid4_hex())}"), b',"resource":',
                  outcome_bytes(notes), _SEARCH_MODE["outcome"])
    if parts:
        parts[0] = _FIRST_ENTRY
    entries = [b"".join(parts)] if parts else []
    return assemble("searchset", entries, total=total, links=links(c, req, used, total, more))


def _entries(parts: list[bytes], base: str, group: Iterable[tuple[str, str, bytes | None]],
             tail: bytes) -> None:
    """bundle.entry()'s bytes of each (type, id, resource bytes) onto `parts`, the constant
    parts made once (the caller joins all entries in one go: a page is tens of kilobytes). A
    resource without bytes in the requested version is left out."""
    for rtype, rid, body in group:
        if body is not None:
            parts += (_NEXT_ENTRY, dumps(f"{base}/{rtype}/{rid}"), b',"resource":', body, tail)
