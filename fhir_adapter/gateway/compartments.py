"""Patient compartment search (R4 compartmentdefinition.html, http.html#vsearch):
`GET [base]/Patient/[id]/[type]?params` is `GET [base]/[type]?<param>=Patient/[id]&params` for
the parameters the official CompartmentDefinition-patient names for that type (vendored in
data/compartments/), and `GET [base]/Patient/[id]/*` searches every type of the compartment
this server stores.

Where a type names several parameters (or `{def}`, the Patient itself) membership is their
union: the ids of all but the first are collected first and the search runs as `_id=...`,
so paging, `_sort` and `_include` work as in any search.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources as package_files
from typing import Any

from flask import Blueprint, Response, request

import fhir_adapter.gateway.searching as searching

from ..auth.access import require_all
from ..errors import BadRequest, FhirError
from ..store.base import SearchQuery
from ..store.canonical import dumps
from ..validation import FhirVersion, resource_types
from .bundle import assemble
from .context import STORED_TYPES, Ctx, ctx
from .interactions import check_type
from .responses import fhir_response
from .rest import prefer

bp = Blueprint("compartments", __name__)
SELF = "{def}"  # R5's name for the compartment's own resource
_UNION_CAP = 1000  # ids of a multi-parameter union; more -> too-costly, never cut short
_NO_ID = "$none"  # not a FHIR id ([A-Za-z0-9.-]): an _id that matches nothing


class TooCostly(FhirError):
    status, code = 422, "too-costly"


@cache
def definition(version: FhirVersion) -> dict[str, Any]:
    """The official Patient CompartmentDefinition of `version`."""
    path = package_files.files("fhir_adapter") / "data" / "compartments"
    return json.loads((path / f"{version.lower()}-patient.json").read_text(encoding="utf-8"))


@cache
def members(version: FhirVersion) -> dict[str, tuple[str, ...]]:
    """Type -> the parameters that put its resources in a Patient's compartment (types the
    definition lists without parameters are not in it). The Patient itself is in its own
    compartment in both versions (R4 says so in prose, R5 with `{def}`)."""
    out = {r["code"]: tuple(r["param"]) for r in definition(version)["resource"]
           if r.get("param")}
    if SELF not in out.get("Patient", ()):
        out["Patient"] = (SELF, *out.get("Patient", ()))
    return out


def stored_members(version: FhirVersion) -> list[str]:
    """The compartment's types this server stores, in a stable order."""
    return sorted(t for t in members(version) if t in STORED_TYPES)


def _ids(c: Ctx, rtype: str, param: str, pid: str) -> list[str]:
    if param == SELF:
        return [pid] if rtype == "Patient" else []
    query = SearchQuery(rtype, c.version, [(param, f"Patient/{pid}")], count=_UNION_CAP + 1,
                        total="none", strict=True)
    found = [s.id for s in c.store.search(query).matches]
    if len(found) > _UNION_CAP:
        raise TooCostly(f"more than {_UNION_CAP} {rtype} resources name Patient/{pid} by "
                        f"{param}; search {rtype}?{param}=Patient/{pid} instead")
    return found


def membership(c: Ctx, rtype: str, pid: str) -> list[tuple[str, str]]:
    """The search parameters that restrict `rtype` to Patient/<pid>'s compartment (400 when
    the type is not in it)."""
    params = members(c.version).get(rtype)
    if not params:
        raise BadRequest(f"{rtype} is not in the Patient compartment of FHIR {c.version}; "
                         "its types here: " + ", ".join(stored_members(c.version)))
    if len(params) == 1 and params[0] != SELF:
        return [(params[0], f"Patient/{pid}")]
    ids = sorted({i for p in params for i in _ids(c, rtype, p, pid)})
    return [("_id", ",".join(ids) or _NO_ID)]


def _patient_exists(c: Ctx, pid: str) -> None:
    c.store.read("Patient", pid)  # 404 / 410 as for a read


def search(c: Ctx, pid: str, rtype: str, params: list[tuple[str, str]],
           lenient: bool) -> bytes:
    """The searchset of `rtype` resources in Patient/<pid>'s compartment."""
    check_type(rtype)
    _patient_exists(c, pid)
    req = searching.parse(c, rtype, [*membership(c, rtype, pid), *params], lenient)
    return searching.run(c, req, lenient)


def search_all(c: Ctx, pid: str, params: list[tuple[str, str]], lenient: bool) -> bytes:
    """Patient/<pid>/*: every stored compartment type, type by type in one paged searchset."""
    require_all(stored_members(c.version), "s", f"Patient/{pid}/* (it searches every type)")
    _patient_exists(c, pid)
    req = searching.parse(c, "Patient", params, lenient)
    if req.sort or req.include or req.revinclude or req.iterate or req.rev_iterate:
        raise BadRequest("_sort, _include and _revinclude need one resource type: search "
                         f"Patient/{pid}/[type] for them")
    totals, queries = [], []
    for rtype in stored_members(c.version):
        filters = [*membership(c, rtype, pid), *req.filters]
        counted = c.store.search(SearchQuery(rtype, c.version, filters, count=0,
                                             total="accurate", strict=not lenient))
        queries.append((rtype, filters))
        totals.append(counted.total or 0)
    total, skip, left, entries = sum(totals), req.offset, req.count, []
    for (rtype, filters), n in zip(queries, totals, strict=True):
        if skip >= n:
            skip -= n
            continue
        if left <= 0:
            break
        page = c.store.search(SearchQuery(rtype, c.version, filters, count=left, offset=skip,
                                          total="none", strict=not lenient))
        for s in page.matches:
            body = searching.resource_bytes(c, req, s)
            if body is not None:
                entries.append(b'"fullUrl":' + dumps(f"{c.base}/{rtype}/{s.id}")
                               + b',"resource":' + body + b',"search":{"mode":"match"}')
        left -= len(page.matches)
        skip = 0
    head = f"{c.base}/Patient/{pid}/*"
    links = [dict(link, url=link["url"].replace(f"{c.base}/Patient?", head + "?", 1))
             for link in searching.links(c, req, list(req.filters), total,
                                         req.offset + req.count < total)]
    return assemble("searchset", [b"{" + e + b"}" for e in entries],
                    total=None if req.total == "none" else total, links=links)


def _params() -> list[tuple[str, str]]:
    return list(request.args.items(multi=True))


def _type_names() -> str:
    # Resource type names (and *) only: /Patient/<id>/_history and /$validate stay theirs.
    names = sorted(set(resource_types("R4")) | set(resource_types("R5")))
    return ", ".join(["'*'", *names])


@bp.get(f"/Patient/<pid>/<any({_type_names()}):rtype>")
def compartment(pid: str, rtype: str) -> Response:
    c = ctx()
    lenient = prefer().get("handling") == "lenient"
    body = (search_all(c, pid, _params(), lenient) if rtype == "*"
            else search(c, pid, rtype, _params(), lenient))
    return fhir_response(body, 200, c.mime, c.version)
