"""FHIR REST routes (R4 http.html): read, vread, create, update, delete, history and search,
plus their conditional forms. Thin glue: the work is in interactions, searching, history."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, request

import fhir_adapter.gateway.elements as elements
import fhir_adapter.gateway.interactions as interactions
import fhir_adapter.gateway.searching as searching

from ..auth.access import require, require_all
from ..errors import BadRequest, Gone, NotFound, UnsupportedMediaType
from ..store.base import Stored
from .context import STORED_TYPES, Ctx, ctx, for_type, serialised
from .history import history
from .interactions import Written, check_type
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


Parts = tuple[int, dict[str, str], bytes | None]  # status, headers, body


def prefer() -> dict[str, str]:
    """The Prefer header as {token: value}: return=minimal, handling=strict, ..."""
    return parse_prefer(request.headers.get("Prefer", ""))


def parse_prefer(header: str) -> dict[str, str]:
    """A Prefer header value as {token: value}."""
    out = {}
    for part in header.replace(";", ",").split(","):
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


def _not_modified(stored: Stored, tag: str | None, since: str | None) -> bool:
    if tag:
        return tag.strip() == "*" or parse_etag(tag) == stored.version_id
    if since:
        try:
            return (parsedate_to_datetime(since).timestamp()
                    >= parsedate_to_datetime(version_headers(stored)["Last-Modified"]).timestamp())
        except (TypeError, ValueError):
            return False
    return False


def resource_parts(c: Ctx, stored: Stored, args: Mapping[str, str], tag: str | None,
                   since: str | None) -> Parts:
    """A stored version as a read answers it: 304 for If-None-Match / If-Modified-Since,
    else the bytes, cut to _summary / _elements of `args`."""
    headers = version_headers(stored)
    if _not_modified(stored, tag, since):
        return 304, headers, None
    # a miss on a MultiDict raises (and catches) an exception inside: look only when given
    summary, wanted = (args.get("_summary"), args.get("_elements")) if args else (None, None)
    elements.check(summary, wanted)
    body = elements.subset_bytes(body_in(stored, c.version), c.version, summary, wanted)
    return 200, headers, body


def read_parts(c: Ctx, rtype: str, id: str, args: Mapping[str, str], tag: str | None,
               since: str | None) -> Parts:
    """The read interaction, for the Flask route and the fast path (fastpath.py) alike."""
    check_type(rtype)
    require(rtype, "r")
    c = for_type(c, rtype)
    with serialised(c.store):
        stored = c.store.read(rtype, id)
    return resource_parts(c, stored, args, tag, since)


def search_parts(c: Ctx, rtype: str, params: list[tuple[str, str]], strict: bool) -> bytes:
    """The search interaction's Bundle, for the Flask routes and the fast path alike (the
    scope checks are in searching.parse, which Bundle GET entries share)."""
    check_type(rtype)
    c = for_type(c, rtype)
    req = searching.parse(c, rtype, params, strict)
    with serialised(c.store):
        return searching.run(c, req, strict)


def _respond(c: Ctx, parts: Parts) -> Response:
    status, headers, body = parts
    return fhir_response(body, status, c.mime, c.version, headers)


@bp.get("/<rtype>/<id>")
def read(rtype: str, id: str) -> Response:
    c = ctx()
    headers = request.headers
    return _respond(c, read_parts(c, rtype, id, request.args, headers.get("If-None-Match"),
                                  headers.get("If-Modified-Since")))


@bp.get("/<rtype>/<id>/_history/<vid>")
def vread(rtype: str, id: str, vid: str) -> Response:
    check_type(rtype)
    require(rtype, "r")
    c = for_type(ctx(), rtype)
    if not vid.isdigit():
        raise NotFound(f"{rtype}/{id} has no version {vid!r} (versions are numbers)")
    stored = c.store.vread(rtype, id, int(vid))
    if stored.deleted:
        raise Gone(f"{rtype}/{id} version {vid} is a deletion", headers=version_headers(stored))
    headers = request.headers
    return _respond(c, resource_parts(c, stored, request.args, headers.get("If-None-Match"),
                                      headers.get("If-Modified-Since")))


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
    require(rtype, "r", "history of an instance")
    c = for_type(ctx(), rtype)
    return fhir_response(history(c, request.args.to_dict(), rtype, id), 200, c.mime, c.version)


@bp.get("/<rtype>/_history")
def type_history(rtype: str) -> Response:
    check_type(rtype)
    require(rtype, "s", "history of a type")
    c = for_type(ctx(), rtype)
    return fhir_response(history(c, request.args.to_dict(), rtype), 200, c.mime, c.version)


@bp.get("/_history")
def system_history() -> Response:
    c = ctx()
    # Every type's versions are in it: only a token that may search every type gets it.
    require_all(STORED_TYPES, "s", "history of the whole server")
    return fhir_response(history(c, request.args.to_dict()), 200, c.mime, c.version)


def _search(rtype: str, params: list[tuple[str, str]]) -> Response:
    c = ctx()
    strict = prefer().get("handling") == "strict"
    return _respond(c, (200, {}, search_parts(c, rtype, params, strict)))


@bp.get("/<rtype>")
def search(rtype: str) -> Response:
    return _search(rtype, list(request.args.items(multi=True)))


@bp.post("/<rtype>/_search")
def search_post(rtype: str) -> Response:
    mime = request.mimetype
    if mime and mime != FORM:
        raise UnsupportedMediaType(f"POST _search takes {FORM}, not {mime}")
    return _search(rtype, [*request.args.items(multi=True), *request.form.items(multi=True)])
