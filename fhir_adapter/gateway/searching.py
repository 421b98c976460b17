"""The search interaction (R4 search.html): result parameters, paging links, `_include` /
`_revinclude`, and the searchset Bundle assembled from stored bytes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlencode

import fhir_adapter.gateway.elements as elements

from ..errors import BadRequest
from ..store.base import SearchQuery, Stored
from ..store.canonical import dumps
from .bundle import assemble
from .context import Ctx
from .includes import included
from .scoping import check_search

# Result parameters handled here; every other parameter filters and goes to the store.
RESULT_PARAMS = ("_count", "_offset", "_sort", "_total", "_summary", "_elements", "_include",
                 "_revinclude", "_format", "_pretty", "_totalMethod")
# Recognised but not supported: ignored (lenient) or 400 (strict), like unknown filters.
UNSUPPORTED = ("_contained", "_containedType", "_score", "_graph", "_list", "_query", "_text",
               "_content", "_filter")
TOTALS = ("none", "estimate", "accurate")
_SEARCH_MODE = {mode: b',"search":' + dumps({"mode": mode}) + b"}"
                for mode in ("match", "include")}
_FIRST_ENTRY, _NEXT_ENTRY = b'{"fullUrl":', b',{"fullUrl":'


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
    ignored: list[str] = field(default_factory=list)
    echo: list[tuple[str, str]] = field(default_factory=list)  # result params for links


def _int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name}={value} is not a whole number") from None
    if number < 0:
        raise BadRequest(f"{name}={value} must not be negative")
    return number


def parse(c: Ctx, resource_type: str, params: list[tuple[str, str]], strict: bool) -> Request:
    """Split and check the parameters; `_count` is capped at MAX_COUNT."""
    req = Request(resource_type, count=c.default_count)
    for name, value in params:
        base = name.split(":", 1)[0]
        if base in UNSUPPORTED:
            if strict:
                raise BadRequest(f"search parameter {name} is not supported here")
            req.ignored.append(name)
        elif base not in RESULT_PARAMS:
            req.filters.append((name, value))
        elif base == "_count":
            req.count = min(_int(name, value), c.max_count)
        elif base == "_offset":
            req.offset = _int(name, value)
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
        elif base == "_include":
            if ":iterate" in name or ":recurse" in name:
                raise BadRequest(f"{name} is not supported (no iterative includes)")
            req.include.append(value)
        elif base == "_revinclude":
            if ":iterate" in name or ":recurse" in name:
                raise BadRequest(f"{name} is not supported (no iterative includes)")
            req.revinclude.append(value)
        if base in ("_sort", "_total", "_summary", "_elements", "_include", "_revinclude"):
            req.echo.append((name, value))
    elements.check(req.summary, req.elements)
    check_search(c, resource_type, req.filters, req.include, req.revinclude)
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


def run(c: Ctx, req: Request, strict: bool) -> bytes:
    """Execute a parsed search; the searchset Bundle as bytes."""
    # One extra match tells whether a next page exists when no total is counted.
    query = SearchQuery(req.resource_type, c.version, list(req.filters),
                        count=req.count + (1 if req.count else 0), offset=req.offset,
                        sort=req.sort, total=req.total, strict=strict)  # type: ignore[arg-type]
    subset = elements.wanted(req.summary, req.elements)
    # A plain search takes its matches as (id, bytes) pairs where the store offers them
    # (SqlStore.search_rows: no Stored built per match); everything else as Stored.
    rows_of = getattr(c.store, "search_rows", None)
    page = None if subset or req.include or req.revinclude or rows_of is None else rows_of(query)
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
    if page is not None:
        _entries(parts, c.base, ((req.resource_type, rid, body) for rid, body in rows[:req.count]),
                 _SEARCH_MODE["match"])
    else:
        found = found[:req.count]
        for mode, group in (("match", found),
                            ("include", included(c, req.resource_type, found, req.include,
                                                 req.revinclude))):
            _entries(parts, c.base, ((s.resource_type, s.id, resource_bytes(c, req, s) if subset
                                      else s.body.get(c.version)) for s in group),
                     _SEARCH_MODE[mode])
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
