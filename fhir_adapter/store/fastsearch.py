"""The common searches as ready SQL text: token, reference and uri parameters without
modifiers (`subject=Patient/1`, `identifier=sys|val`, `status=a,b`, `_id=x`), ordered by id.

Building the same statement with SQLAlchemy Core costs ~1 ms per search (expression trees,
cache keys, execution context) against ~0.1 ms for the database to answer it, so these
shapes skip it. The SQL is exactly what search.py generates for them (same conditions, same
index use, same order); every other search (modifiers, other parameter types, `_sort`,
unknown parameters) returns None here and takes the general path. Both paths skip the
COUNT(*) when the page itself tells the total (`total_from_page`). Each distinct search's SQL
is built once and remembered (bounded); `fetch` runs it on a DB-API cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .base import SearchQuery
from .indexing import UNINDEXED
from .search import CONTROL, id_values, split_escaped, unescape
from .searchparams import TABLE_OF, search_params
from .values import split_reference


@dataclass(frozen=True)
class Statements:
    """Count and page statements of one search (qmark style) and their parameters."""

    count: str
    count_params: tuple[Any, ...]
    page: str
    page_params: tuple[Any, ...]


_FROM = ("FROM resources JOIN resource_bodies ON resource_bodies.res_type = resources.res_type"
         " AND resource_bodies.res_id = resources.res_id"
         " AND resource_bodies.version_id = resources.version_id"
         " AND resource_bodies.fhir_version = ?"
         " WHERE resources.res_type = ? AND resources.deleted = {false}")
_PAGE = ("SELECT resources.res_id, resources.version_id, resources.last_updated,"
         " resource_bodies.body ")
_IN = ("resources.res_id IN (SELECT res_id FROM idx_{table} WHERE fhir_version = ?"
       " AND res_type = ? AND param = ? AND ({ors}))")


def _token(raw: str, params: list[Any]) -> str:
    parts = split_escaped(raw, "|")
    if len(parts) == 1:
        params.append(unescape(raw))
        return "code = ?"
    system, code = unescape(parts[0]), unescape("|".join(parts[1:]))
    if system == "":
        cond = "system IS NULL"
    else:
        cond = "system = ?"
        params.append(system)
    if code:
        params.append(code)
        return f"{cond} AND code = ?"
    return cond


def _reference(raw: str, params: list[Any]) -> str:
    value = unescape(raw)
    if "://" in value or value.startswith("urn:"):
        params.append(value.split("|", 1)[0])
        return "url = ?"
    rtype, rid = split_reference(value)
    if rtype:
        params += [rtype, rid]
        return "target_type = ? AND target_id = ?"
    if rid:
        params.append(rid)
        return "target_id = ?"
    return "1 = 0"


def _uri(raw: str, params: list[Any]) -> str:
    params.append(unescape(raw))
    return "code = ?"


_MATCHERS = {"token": _token, "reference": _reference, "uri": _uri}


def statements(query: SearchQuery, dialect: str) -> Statements | None:
    """The SQL of `query` when it has one of the common shapes, else None."""
    if query.sort:
        return None
    criteria = tuple(query.params)
    try:
        found = _compiled(query.version, query.resource_type, criteria, dialect)
    except TypeError:  # unhashable pairs (lists, say): build it without remembering
        found = _compiled.__wrapped__(query.version, query.resource_type, criteria, dialect)
    if found is None:
        return None
    count, page, params = found
    return Statements(count, params, page, (*params, query.count, max(query.offset, 0)))


@lru_cache(maxsize=1024)  # clients repeat their searches: build each one's SQL once
def _compiled(version: str, resource_type: str, criteria: tuple[tuple[str, str], ...],
              dialect: str) -> tuple[str, str, tuple[Any, ...]] | None:
    """(count SQL, page SQL without LIMIT/OFFSET values, parameters), or None."""
    known = search_params(version, resource_type)  # type: ignore[arg-type]
    conds: list[str] = []
    params: list[Any] = [version, resource_type]
    for name, value in criteria:
        code, _, modifier = name.partition(":")
        if code in CONTROL:
            continue
        param = known.get(code)
        if param is not None and code == "_id" and not modifier:  # as search._by_id
            ids = id_values(value)
            if not ids:
                return None
            params += ids
            conds.append(f"resources.res_id IN ({', '.join('?' * len(ids))})")
            continue
        if modifier or param is None or param.type not in _MATCHERS or code in UNINDEXED:
            return None
        match = _MATCHERS[param.type]
        params += [version, resource_type, param.code]
        ors = " OR ".join(f"({match(v, params)})" for v in split_escaped(value, ","))
        conds.append(_IN.format(table=TABLE_OF[param.type], ors=ors))
    where = _FROM.format(false="0" if dialect == "sqlite" else "false")
    where += "".join(f" AND {c}" for c in conds)
    page = f"{_PAGE}{where} ORDER BY resources.res_id ASC LIMIT ? OFFSET ?"
    count = f"SELECT count(*) {where}"
    if dialect != "sqlite":
        count, page = count.replace("?", "%s"), page.replace("?", "%s")
    return count, page, tuple(params)


def total_from_page(query: SearchQuery, found: int) -> int | None:
    """The total when the page itself tells it (a short, non-empty or first page: nothing
    follows it), so the COUNT(*) is skipped; None when it must be counted or is not asked."""
    if query.total == "none" or query.count <= 0 or found >= query.count:
        return None
    if found == 0 and query.offset > 0:
        return None  # past the end, or everything before the offset was deleted meanwhile
    return max(query.offset, 0) + found


def fetch(cur: Any, query: SearchQuery, sql: Statements, snapshot: bool
          ) -> tuple[list[Any], int | None]:
    """Run `sql` on a DB-API cursor: (rows of id, version id, last updated, body; the total
    or None). `snapshot`: wrap both in BEGIN/COMMIT (SQLite in autocommit)."""
    if snapshot:
        cur.execute("BEGIN")
    try:
        rows = []
        if query.count > 0:
            cur.execute(sql.page, sql.page_params)
            rows = cur.fetchall()
        total = total_from_page(query, len(rows))
        if total is None and query.total != "none":
            cur.execute(sql.count, sql.count_params)
            total = cur.fetchone()[0]
    finally:
        if snapshot:
            cur.execute("COMMIT")
    return rows, total
