"""Search-index rows of one resource in one FHIR version, computed at write time from the
official SearchParameter expressions (searchparams.py) and the FHIRPath subset (fhirpath.py).

Composite parameters index each component under `code$N` with a shared group number per
item of the composite's base, so a search can require the components to match together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..validation import FhirVersion
from .fhirpath import Context, Node, compile_expression
from .searchparams import TABLE_OF, SearchParam, search_params
from .values import (
    date_values,
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

Rows = dict[str, list[dict[str, Any]]]


def _add(rows: Rows, seen: set[tuple], table: str, key: dict[str, Any], nodes: list[Node],
         targets: tuple[str, ...] = ()) -> None:
    columns, extract = EXTRACTORS[table]
    for node in nodes:
        for values in extract(node):
            if table == "reference" and values[0] is None and values[1] and len(targets) == 1:
                values = (targets[0], *values[1:])  # a bare id: the only possible type
            marker = (table, key["param"], key["grp"], *values)
            if marker in seen:
                continue
            seen.add(marker)
            rows[table].append({**key, **dict(zip(columns, values, strict=True))})


def index_rows(resource: dict[str, Any], version: FhirVersion) -> Rows:
    """Every index row of `resource` (which carries its final id and meta) in `version`."""
    rtype, rid = resource["resourceType"], resource["id"]
    base = {"res_type": rtype, "res_id": rid, "fhir_version": version}
    root = Node(resource, rtype)
    ctx = Context(version, root)
    rows: Rows = {table: [] for table in EXTRACTORS}
    seen: set[tuple] = set()
    for param in search_params(version, rtype).values():
        nodes = _evaluate(param, [root], ctx)
        if param.type == "composite":
            _add_composite(rows, seen, base, param, nodes, ctx)
        else:
            _add(rows, seen, TABLE_OF[param.type], {**base, "param": param.code, "grp": 0}, nodes,
                 param.targets)
    return rows


def _evaluate(param: SearchParam, focus: list[Node], ctx: Context) -> list[Node]:
    return compile_expression(param.expression)(focus, ctx)


def _add_composite(rows: Rows, seen: set[tuple], base: dict[str, Any], param: SearchParam,
                   items: list[Node], ctx: Context) -> None:
    for grp, item in enumerate(items, start=1):
        for n, component in enumerate(param.components):
            if component.type in TABLE_OF:
                _add(rows, seen, TABLE_OF[component.type],
                     {**base, "param": f"{param.code}${n}", "grp": grp},
                     component.compiled([item], ctx))
