"""Search-index rows of one resource in one FHIR version, computed at write time from the
official SearchParameter expressions (searchparams.py) and the FHIRPath subset (fhirpath.py).

An Identifier token parameter also gets `<code>:of-type` rows (its type codings with its value,
values.identifier_type_values) for the `:of-type` modifier.

Composite parameters index each component under `code$N` with a shared group number per
item of the composite's base, so a search can require the components to match together.

Indexing runs on every write of every version (a bulk load spends more here than anywhere
else), so each (version, resource type) gets a plan, built once: per parameter its expression
compiled for that root type, its table and extractor, and the leading steps it needs
(`fhirpath.root_paths`). Most of a type's ~20 parameters find nothing in a given resource;
which ones is decided once per resource shape (its keys, and those of `meta`...) and
remembered. Rows are built as tuples (`index_tuples`: the store's writes take them through
bulk.represent); `index_rows` gives them as dicts by column name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..fhirversion import FhirVersion
from .fhirpath import Context, Eval, Node, compile_for, root_paths
from .searchparams import TABLE_OF, search_params
from .values import (
    date_values,
    identifier_type_values,
    number_values,
    quantity_values,
    reference_values,
    string_values,
    token_values,
)

# table -> (columns after the common ones, extractor node -> tuples of those columns)
EXTRACTORS: dict[str, tuple[tuple[str, ...], Callable[[Node], list[Any]]]] = {
    "token": (("system", "code", "text"), token_values),
    "string": (("prefix", "norm", "exact"), string_values),
    "date": (("low", "high"), date_values),
    "reference": (("target_type", "target_id", "url"), reference_values),
    "number": (("value",), lambda n: [(v,) for v in number_values(n)]),
    "quantity": (("low", "high", "system", "code", "unit"), quantity_values),
}
# The token-table `param` of a reference parameter's Reference.identifier rows.
IDENTIFIER = "{}:identifier"
COMMON = ("res_type", "res_id", "fhir_version", "param", "grp")
# Answered from the resources table (search.py, fastsearch.py), not from index rows: res_id
# and last_updated hold them already. They were 4 of ~22 rows an AE adds (both versions).
UNINDEXED = frozenset({"_id", "_lastUpdated"})
# table -> every column of its rows, in the order of index_tuples
COLUMNS = {table: (*COMMON, *columns) for table, (columns, _) in EXTRACTORS.items()}

Rows = dict[str, list[dict[str, Any]]]
Tuples = dict[str, list[tuple[Any, ...]]]
Needs = frozenset[tuple[str, ...]] | None  # fhirpath.root_paths of an expression


@dataclass(frozen=True, slots=True)
class _Step:
    """One parameter (or composite component) as indexing runs it."""

    key: tuple[str, int]  # (param, grp) of its rows
    table: str
    evaluate: Eval
    extract: Callable[[Node], list[Any]]
    bare_type: str | None  # the type of a bare-id reference: the only target type, if one
    needs: Needs


@dataclass(frozen=True, slots=True)
class _Composite:
    """A composite parameter: its items, then its components on each."""

    code: str
    evaluate: Eval
    needs: Needs
    components: tuple[_Step, ...]  # keys (`code$N`, 0): the group number is set per item


@dataclass(frozen=True, slots=True)
class _Plan:
    """The steps of one resource type, and which of them can find anything in resources of
    each shape seen: their keys, and the keys of the `deep` children that the steps' needs
    look into (`meta` for `Resource.meta.profile`)."""

    steps: tuple[_Step | _Composite, ...]
    deep: tuple[str, ...]
    by_shape: dict[tuple[Any, ...], tuple[_Step | _Composite, ...]]


_SHAPES = 1024  # shapes remembered per plan: loads repeat a few; clients may send any


def _step(key: tuple[str, int], table: str, evaluate: Eval, targets: tuple[str, ...],
          needs: Needs) -> _Step:
    bare = targets[0] if table == "reference" and len(targets) == 1 else None
    return _Step(key, table, evaluate, EXTRACTORS[table][1], bare, needs)


@cache
def _plan(version: FhirVersion, rtype: str) -> _Plan:
    steps: list[_Step | _Composite] = []
    for param in search_params(version, rtype).values():
        if param.code in UNINDEXED:
            continue
        evaluate = compile_for(param.expression, version, rtype)
        needs = root_paths(param.expression, rtype)
        if param.type == "composite":
            parts = tuple(_step((f"{param.code}${n}", 0), TABLE_OF[c.type], c.compiled, (),
                                None)
                          for n, c in enumerate(param.components) if c.type in TABLE_OF)
            steps.append(_Composite(param.code, evaluate, needs, parts))
        else:
            steps.append(_step((param.code, 0), TABLE_OF[param.type], evaluate, param.targets,
                               needs))
        if param.type == "token" and param.element == "Identifier":
            # `:of-type` rows (search._of_type): the same elements, keyed by type coding
            steps.append(_Step((f"{param.code}:of-type", 0), "token", evaluate,
                               identifier_type_values, None, needs))
    deep = sorted({p[0] for s in steps for p in s.needs or () if len(p) > 1})
    return _Plan(tuple(steps), tuple(deep), {})


def _runnable(plan: _Plan, resource: dict[str, Any]) -> tuple[_Step | _Composite, ...]:
    """The steps that may find something in `resource`, remembered by its shape."""
    shape = (tuple(resource), *[tuple(v) if type(v) is dict else None
                                 for v in map(resource.get, plan.deep)])
    found = plan.by_shape.get(shape)
    if found is None:
        stems = _stems_of(resource)
        found = tuple(s for s in plan.steps if _may_find(s.needs, resource, stems))
        if len(plan.by_shape) < _SHAPES:
            plan.by_shape[shape] = found
    return found


def _stems_of(value: dict[str, Any]) -> set[str]:
    """The names a child step finds something under in `value`: each key, and each of its
    prefixes that a choice element is found under (`occurrenceDateTime`: `occurrence`,
    `occurrenceDate`), as fhirpath.children finds them."""
    return {key[:i] for key in value for i in range(1, len(key) + 1)
            if i == len(key) or key[i].isupper()}


def _may_find(needs: Needs, resource: dict[str, Any], stems: set[str]) -> bool:
    if needs is None:
        return True
    for path in needs:
        if path[0] not in stems:
            continue
        child = resource.get(path[0])
        if len(path) == 1 or type(child) is not dict:
            return True  # a list or a choice element: not looked into
        if path[1] in _stems_of(child):
            return True
    return False


def _values(step: _Step, nodes: list[Node]) -> list[tuple[Any, ...]]:
    """The distinct column values of `nodes`, in order of first appearance (bare-id
    references typed). Each node's values are extracted, then kept, in turn: an invalid
    resource fails where, and as, it always did."""
    extract, bare = step.extract, step.bare_type
    found: dict[tuple[Any, ...], None] = {}
    for node in nodes:
        for values in extract(node):
            if bare and values[0] is None and values[1]:
                values = (bare, *values[1:])
            found[values] = None
    return list(found)


def index_tuples(resource: dict[str, Any], version: FhirVersion) -> Tuples:
    """Every index row of `resource` (which carries its final id and meta) in `version`, as
    tuples in the column order of COLUMNS[table]."""
    rtype, rid = resource["resourceType"], resource["id"]
    rows: Tuples = {table: [] for table in EXTRACTORS}
    plan = _plan(version, rtype)
    if not plan.steps:
        return rows
    root = Node(resource, rtype)
    ctx, focus, base = Context(version, root), [root], (rtype, rid, version)
    for step in _runnable(plan, resource):
        nodes = step.evaluate(focus, ctx)
        if not nodes:
            continue
        if isinstance(step, _Composite):
            _add_composite(rows, base, step, nodes, ctx)
            continue
        if step.table == "reference":
            _add_identifiers(rows, base, step.key[0], nodes)
        if len(nodes) == 1 and not step.bare_type:  # _values, shortened for the usual case
            found = step.extract(nodes[0])
            if len(found) == 1:
                hash(found[0])  # unhashable values (a list as a code) raise, as in _values
            elif found:
                found = list(dict.fromkeys(found))
            else:
                continue
        else:
            found = _values(step, nodes)
            if not found:
                continue
        head = base + step.key
        rows[step.table].extend([head + v for v in found])
    return rows


def _add_identifiers(rows: Tuples, base: tuple[str, str, str], code: str,
                     nodes: list[Node]) -> None:
    """Token rows of each Reference.identifier, under `<code>:identifier`: what the
    `:identifier` modifier searches (R4 search.html#modifiers: the reference's own logical
    identifier, not the target's). A Reference may carry one without any literal reference."""
    found = [row for node in nodes if type(node.value) is dict
             and type(ident := node.value.get("identifier")) is dict
             for row in token_values(Node(ident, "Identifier")) if row[0] or row[1]]
    if found:
        head = (*base, IDENTIFIER.format(code), 0)
        rows["token"].extend([head + v for v in dict.fromkeys(found)])


def _add_composite(rows: Tuples, base: tuple[str, str, str], composite: _Composite,
                   items: list[Node], ctx: Context) -> None:
    for grp, item in enumerate(items, start=1):
        for part in composite.components:
            found = _values(part, part.evaluate([item], ctx))
            if found:
                head = (*base, part.key[0], grp)
                rows[part.table].extend([head + v for v in found])


def index_rows(resource: dict[str, Any], version: FhirVersion) -> Rows:
    """Every index row of `resource` (which carries its final id and meta) in `version`, as
    dicts by column name."""
    return {table: [dict(zip(COLUMNS[table], row, strict=False)) for row in found] if found
            else found for table, found in index_tuples(resource, version).items()}
