"""Chained parameters and reverse chaining (`_has`) as SQL over the reference index (R4/R5
search.html#chaining, #has).

A chain `subject:Patient.organization.name=x` is answered link by link from the end: the
ids of current Organizations whose `name` matches; the ids of current Patients whose
`organization` reference rows point at one of them (target_type, target_id); the resources
whose `subject` rows point at one of those Patients. Each link is an IN subquery the
(fhir_version, res_type, param, target_id, target_type) index answers, so the cost follows
the number of matches, not the size of the store. An untyped link (`subject.name=x`) is
resolved over every served target type of the parameter that has the next parameter, one
UNION ALL branch per type (ambiguity is the spec's "server may search all of them").

`_has:Type:ref:param=v` is the mirror: the resources that current `Type` resources matching
`param=v` point at through `ref`, read off the reference rows of those sources (`target_id`
where `target_type` is the searched type). `param` may itself be a chain or another `_has`.

Every link of either kind counts towards MAX_DEPTH. The last parameter of a chain or `_has`
is matched by the caller's `leaf` (search.py), which answers any parameter of any type; this
module knows nothing of value matching, and search.py nothing of links.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, Select, false, select, union_all

from ..errors import BadRequest
from .base import SearchQuery
from .schema import index_tables, resources
from .searchparams import RESOURCE_TYPES, SearchParam, search_params

# References one search parameter may follow, chain links and `_has` levels together
# (`a.b.c.d=` or `_has:A:p:_has:B:q:_has:C:r:s=`). HAPI has no fixed limit; ours keeps a
# hostile URL from building an unbounded nest of subqueries. docs/rest.md says it.
MAX_DEPTH = 4
REFERENCE = index_tables["reference"]


class Unknown(Exception):  # noqa: N818 (a verdict, not a failure: the caller decides 400 or lenient)
    """A parameter this server cannot answer for the searched type: the caller answers 400,
    or leaves it out and says so (Prefer: handling=lenient), as for any unknown parameter."""


# (query on a type, parameter name with modifiers, value, depth) -> condition on `resources`
Leaf = Callable[[SearchQuery, str, str, int], ColumnElement[bool]]
CheckModifier = Callable[[SearchParam, str], None]


def is_chain(name: str) -> bool:
    """A chained parameter (`subject.name`, `subject:Patient.name`), not `_has`."""
    return "." in name and not name.startswith("_has:")


def is_reverse(name: str) -> bool:
    return name.startswith("_has:")


def _deeper(depth: int, name: str) -> int:
    if depth >= MAX_DEPTH:
        raise BadRequest(f"{name}: a search parameter may follow at most {MAX_DEPTH} "
                         "references (chain links and _has levels together)")
    return depth + 1


def current(rtype: str, cond: ColumnElement[bool]) -> Select:
    """res_id of the current (not deleted) `rtype` resources meeting `cond`. Each link is a
    CTE of its own (SQLAlchemy lists them all in the statement's one WITH): nested IN
    subqueries, two per link, overflow SQLite's parser stack at four links."""
    link = select(resources.c.res_id).where(resources.c.res_type == rtype,
                                            resources.c.deleted == false(),
                                            cond).correlate(None).cte()
    return select(link.c.res_id)


def _sub(query: SearchQuery, rtype: str) -> SearchQuery:
    return SearchQuery(rtype, query.version, strict=query.strict)


def reference_param(query: SearchQuery, rtype: str, code: str) -> SearchParam:
    param = search_params(query.version, rtype).get(code)
    if param is None or param.type != "reference":
        raise Unknown(f"{code!r} is not a reference parameter of {rtype}")
    return param


def served_targets(param: SearchParam) -> list[str]:
    """The served types a reference parameter may point at (every one if it names none)."""
    return [t for t in (param.targets or RESOURCE_TYPES) if t in RESOURCE_TYPES]


def forward(query: SearchQuery, name: str, value: str, depth: int, leaf: Leaf,
            check_modifier: CheckModifier) -> ColumnElement[bool]:
    """`name` = `code[:Type].rest`: the resources of query.resource_type whose `code`
    reference points at a current resource matching `rest=value`."""
    head, _, tail = name.partition(".")
    code, _, typed = head.partition(":")
    param = reference_param(query, query.resource_type, code)
    if typed:
        check_modifier(param, typed)  # 400 unless a type it may point at
        if not typed[:1].isupper():
            raise BadRequest(f"{head}: only a type may qualify a chained reference "
                             f"(not :{typed})")
    deeper = _deeper(depth, name)
    served = served_targets(param)
    branches, why = [], []
    ref = REFERENCE.alias(f"chain{depth}")
    for target in [typed] if typed else served:
        try:
            cond = leaf(_sub(query, target), tail, value, deeper)
        except Unknown as exc:  # an untyped link skips the types without the parameter
            why.append(str(exc))
            continue
        branches.append(select(ref.c.res_id).where(
            ref.c.fhir_version == query.version, ref.c.res_type == query.resource_type,
            ref.c.param == code, ref.c.target_type == target,
            ref.c.target_id.in_(current(target, cond))))
    if not branches:
        raise Unknown(f"{tail!r} cannot be searched on what {code!r} refers to "
                      f"({typed or ', '.join(served) or 'no served type'}): "
                      + "; ".join(dict.fromkeys(why)))
    found = branches[0] if len(branches) == 1 else union_all(*branches)
    return resources.c.res_id.in_(found)


def reverse(query: SearchQuery, name: str, value: str, depth: int,
            leaf: Leaf) -> ColumnElement[bool]:
    """`name` = `_has:Source:ref:rest`: the resources of query.resource_type that a current
    Source resource matching `rest=value` points at through its reference `ref`."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise BadRequest(f"{name}: _has takes _has:Type:reference:parameter=value")
    _, source, code, rest = parts
    if source not in RESOURCE_TYPES:
        raise Unknown(f"{source} is not a type this server stores")
    param = reference_param(query, source, code)
    target = query.resource_type
    if target not in served_targets(param):
        raise BadRequest(f"{name}: {source}.{code} does not refer to {target} (it refers to "
                         f"{', '.join(served_targets(param)) or 'no served type'})")
    deeper = _deeper(depth, name)
    cond = leaf(_sub(query, source), rest, value, deeper)
    ref = REFERENCE.alias(f"has{depth}")
    pointed = select(ref.c.target_id).where(
        ref.c.fhir_version == query.version, ref.c.res_type == source, ref.c.param == code,
        ref.c.target_type == target, ref.c.res_id.in_(current(source, cond)))
    return resources.c.res_id.in_(pointed)
