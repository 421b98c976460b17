"""FHIR REST routes (R4 http.html): read, vread, create, update, delete, history and search,
plus their conditional forms. Thin glue: the work is in interactions, searching, history."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, request

import fhir_adapter.gateway.elements as elements
import fhir_adapter.gateway.interactions as interactions
import fhir_adapter.gateway.searching as searching

from ..errors import BadRequest, Gone, UnsupportedMediaType
from ..store.base import Stored
from .context import Ctx, ctx, for_type
from .history import history
from .interactions import Written, check_id, check_type, version_number
from .negotiation import FORM, read_json
from .responses import (
    body_in,
    fhir_response,
    info,
    location,
    parse_etag,
    version_headers,
)

bp = Blueprint("rest", __name__)
_NOT_CRITERIA = ("_format", "_pretty", "_summary", "_elements")  # about the response


def prefer() -> dict[str, str]:
    """The Prefer header as {token: value}: return=minimal, handling=strict, ..."""
    out = {}
    for part in request.headers.get("Prefer", "").replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            out[key.lower()] = value.strip().strip('"').lower()
    return out


def written(c: Ctx, result: Written) -> Response:
    """201/200 with Location, ETag, Last-Modified; the body as Prefer: return= asks."""
    headers = version_headers(result.stored)
    headers["Location"] = location(c.base, result.stored)
    wanted = prefer().get("return", "representation")
    if wanted == "minimal":
        body = None
    elif wanted == "operationoutcome":
        verb = "created" if result.status == 201 else "updated or matched"
        body = info(f"{result.stored.resource_type}/{result.stored.id} {verb}, version "
                    f"{result.stored.version_id}")
    else:
        body = body_in(result.stored, c.version)
    return fhir_response(body, result.status, c.mime, c.version, headers)


def _not_modified(stored: Stored) -> bool:
    tag = request.headers.get("If-None-Match")
    if tag:
        return tag.strip() == "*" or parse_etag(tag) == stored.version_id
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            return (parsedate_to_datetime(since).timestamp()
                    >= parsedate_to_datetime(version_headers(stored)["Last-Modified"]).timestamp())
        except (TypeError, ValueError):
            return False
    return False


def _resource(c: Ctx, stored: Stored) -> Response:
    headers = version_headers(stored)
    if _not_modified(stored):
        return fhir_response(None, 304, c.mime, c.version, headers)
    args = request.args  # a miss on a MultiDict raises (and catches) an exception inside
    summary, wanted = (args.get("_summary"), args.get("_elements")) if args else (None, None)
    elements.check(summary, wanted)
    body = elements.subset_bytes(body_in(stored, c.version), c.version, summary, wanted)
    return fhir_response(body, 200, c.mime, c.version, headers)


@bp.get("/<rtype>/<id>")
def read(rtype: str, id: str) -> Response:
    check_type(rtype)
    check_id(id)
    c = for_type(ctx(), rtype)
    return _resource(c, c.store.read(rtype, id))


@bp.get("/<rtype>/<id>/_history/<vid>")
def vread(rtype: str, id: str, vid: str) -> Response:
    check_type(rtype)
    check_id(id)
    c = for_type(ctx(), rtype)
    stored = c.store.vread(rtype, id, version_number(rtype, id, vid))
    if stored.deleted:
        raise Gone(f"{rtype}/{id} version {vid} is a deletion", headers=version_headers(stored))
    return _resource(c, stored)


def _criteria() -> str | None:
    # fhirpy's get_or_create and conditional PUT/DELETE send criteria as the query string.
    params = [(k, v) for k, v in request.args.items(multi=True) if k not in _NOT_CRITERIA]
    if not params:
        return None
    return urlencode(params)


@bp.post("/<rtype>")
def create(rtype: str) -> Response:
    c = ctx()
    check_type(rtype, write=True)
    criteria = request.headers.get("If-None-Exist") or _criteria()
    return written(c, interactions.create(c, rtype, read_json(request),
                                          if_none_exist=criteria))


@bp.put("/<rtype>/<id>")
def update(rtype: str, id: str) -> Response:
    c = ctx()
    check_type(rtype, write=True)
    check_id(id, write=True)
    return written(c, interactions.update(c, rtype, id, read_json(request),
                                          if_match=parse_etag(request.headers.get("If-Match"))))


@bp.put("/<rtype>")
def conditional_update(rtype: str) -> Response:
    c = ctx()
    check_type(rtype, write=True)
    criteria = _criteria()
    if not criteria:
        raise BadRequest(f"PUT {rtype} needs an id in the URL or search criteria")
    return written(c, interactions.conditional_update(
        c, rtype, criteria, read_json(request),
        if_match=parse_etag(request.headers.get("If-Match"))))


def _deleted(c: Ctx, rtype: str, stored: Stored | None) -> Response:
    if stored is None:
        return fhir_response(info(f"no current {rtype} matched: nothing to delete"), 200,
                             c.mime, c.version)
    return fhir_response(info(f"{rtype}/{stored.id} deleted"), 200, c.mime, c.version,
                         {"ETag": version_headers(stored)["ETag"]})


@bp.delete("/<rtype>/<id>")
def delete(rtype: str, id: str) -> Response:
    c = ctx()
    check_id(id)
    return _deleted(c, rtype, interactions.delete(c, rtype, id))


@bp.delete("/<rtype>")
def conditional_delete(rtype: str) -> Response:
    c = ctx()
    check_type(rtype, write=True)
    criteria = _criteria()
    if not criteria:
        raise BadRequest(f"DELETE {rtype} needs an id in the URL or search criteria")
    return _deleted(c, rtype, interactions.conditional_delete(c, rtype, criteria))


@bp.get("/<rtype>/<id>/_history")
def instance_history(rtype: str, id: str) -> Response:
    check_type(rtype)
    check_id(id)
    c = for_type(ctx(), rtype)
    return fhir_response(history(c, request.args.to_dict(), rtype, id), 200, c.mime, c.version)


@bp.get("/<rtype>/_history")
def type_history(rtype: str) -> Response:
    check_type(rtype)
    c = for_type(ctx(), rtype)
    return fhir_response(history(c, request.args.to_dict(), rtype), 200, c.mime, c.version)


@bp.get("/_history")
def system_history() -> Response:
    c = ctx()
    return fhir_response(history(c, request.args.to_dict()), 200, c.mime, c.version)


def _search(rtype: str, params: list[tuple[str, str]]) -> Response:
    check_type(rtype)
    c = for_type(ctx(), rtype)
    lenient = prefer().get("handling") == "lenient"
    req = searching.parse(c, rtype, params, lenient)
    return fhir_response(searching.run(c, req, lenient), 200, c.mime, c.version)


@bp.get("/<rtype>")
def search(rtype: str) -> Response:
    return _search(rtype, list(request.args.items(multi=True)))


@bp.post("/<rtype>/_search")
def search_post(rtype: str) -> Response:
    mime = request.mimetype
    if mime and mime != FORM:
        raise UnsupportedMediaType(f"POST _search takes {FORM}, not {mime}")
    return _search(rtype, [*request.args.items(multi=True), *request.form.items(multi=True)])
