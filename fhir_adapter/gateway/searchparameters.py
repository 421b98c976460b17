"""GET /SearchParameter: the SearchParameter resources this server indexes, per FHIR version
(the vendored official ones and our own, store/searchparams.py), read-only. Read by id and
search by `url`, `base`, `code`, `type`, `name` and `_id` (comma = or), paged like any
search. Other filters are refused: a parameter we ignored would widen the answer."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response, request

import fhir_adapter.gateway.elements as elements
import fhir_adapter.gateway.searching as searching

from ..auth.access import require
from ..errors import BadRequest, MethodNotAllowed, NotFound
from ..store.canonical import dumps
from ..store.searchparams import definitions
from ..validation import FhirVersion
from .bundle import assemble, entry
from .context import ctx
from .responses import fhir_response

bp = Blueprint("searchparameters", __name__)
RTYPE = "SearchParameter"
FILTERS = {"_id": "id", "url": "url", "base": "base", "code": "code", "type": "type",
           "name": "name"}
# The official parameters behind FILTERS, for the CapabilityStatement (same in R4 and R5).
DEFINED_BY = {"_id": ("token", "http://hl7.org/fhir/SearchParameter/Resource-id"),
              "url": ("uri", "http://hl7.org/fhir/SearchParameter/conformance-url"),
              "base": ("token", "http://hl7.org/fhir/SearchParameter/SearchParameter-base"),
              "code": ("token", "http://hl7.org/fhir/SearchParameter/SearchParameter-code"),
              "type": ("token", "http://hl7.org/fhir/SearchParameter/SearchParameter-type"),
              "name": ("string", "http://hl7.org/fhir/SearchParameter/conformance-name")}


def capability() -> dict[str, Any]:
    """This type's entry of CapabilityStatement.rest.resource."""
    return {"type": RTYPE, "documentation": "The search parameters this server indexes: the "
            "official ones and its own (read-only).",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": n, "definition": url, "type": kind}
                            for n, (kind, url) in DEFINED_BY.items()]}


@cache
def served(version: FhirVersion) -> dict[str, bytes]:
    """id -> serialised SearchParameter, in the definitions' order."""
    return {sp["id"]: dumps(sp) for sp in definitions(version)}


def _matches(version: FhirVersion, filters: list[tuple[str, str]]) -> list[str]:
    found = []
    for sp in definitions(version):
        ok = True
        for name, value in filters:
            have = sp.get(FILTERS[name])
            have = set(have) if isinstance(have, list) else {have}
            if not have & set(value.split(",")):
                ok = False
                break
        if ok:
            found.append(sp["id"])
    return found


@bp.get(f"/{RTYPE}")
def search() -> Response:
    c = ctx()
    req = searching.parse(c, RTYPE, list(request.args.items(multi=True)), lenient=False)
    unknown = [n for n, _ in req.filters if n not in FILTERS]
    if unknown or req.include or req.revinclude or req.iterate or req.rev_iterate or req.sort:
        raise BadRequest(f"{RTYPE} is searched here by {', '.join(FILTERS)} only (with "
                         "_count, _offset, _total); not by "
                         + ", ".join(unknown or ["_include/_revinclude/_sort"]))
    ids = _matches(c.version, req.filters)
    page = ids[req.offset:req.offset + req.count]
    bodies = served(c.version)
    entries = [entry(f"{c.base}/{RTYPE}/{i}", elements.subset_bytes(
        bodies[i], c.version, req.summary, req.elements), {"search": {"mode": "match"}})
        for i in page]
    total = None if req.total == "none" else len(ids)
    links = searching.links(c, req, req.filters, len(ids),
                            req.offset + req.count < len(ids))
    return fhir_response(assemble("searchset", entries, total=total, links=links), 200,
                         c.mime, c.version)


@bp.get(f"/{RTYPE}/<id>")
def read(id: str) -> Response:
    require(RTYPE, "r")
    c = ctx()
    body = served(c.version).get(id)
    if body is None:
        raise NotFound(f"{RTYPE}/{id} is not a search parameter of this server in FHIR "
                       f"{c.version}")
    return fhir_response(body, 200, c.mime, c.version)


@bp.route(f"/{RTYPE}", methods=["POST", "PUT", "DELETE", "PATCH"])
@bp.route(f"/{RTYPE}/<id>", methods=["PUT", "DELETE", "PATCH"])
def write(id: str | None = None) -> Response:
    raise MethodNotAllowed(f"{RTYPE} is read-only here: add a definition to "
                           "data/searchparameters/own-*.json and run `fhir-adapter db reindex`")
