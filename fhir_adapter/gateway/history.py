"""The history interaction (instance, type, system): a `history` Bundle of stored versions,
newest first, with `_since`, `_at`, `_count` and paging links. Any other parameter is a 400:
ignored, it would widen the answer."""

from __future__ import annotations

from urllib.parse import urlencode

from ..errors import BadRequest, NotFound
from ..store.base import Stored
from .bundle import assemble, entry
from .context import Ctx
from .responses import etag

PARAMS = ("_since", "_at", "_count", "_offset", "_format", "_pretty")
_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


def _entry(c: Ctx, stored: Stored) -> bytes:
    url = f"{stored.resource_type}/{stored.id}"
    method = "DELETE" if stored.deleted else stored.method
    extra = {
        "request": {"method": method, "url": stored.resource_type if method == "POST" else url},
        "response": {"status": _STATUS.get(method, "200 OK"), "etag": etag(stored.version_id),
                     "lastModified": stored.last_updated},
    }
    # A version without a representation in this FHIR version keeps its entry, without body.
    body = None if stored.deleted else stored.body.get(c.version)
    return entry(f"{c.base}/{url}", body, extra)


def _int(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise BadRequest(f"{name}={value} is not a whole number")
    return int(value)


def history(c: Ctx, args: dict[str, str], resource_type: str | None = None,
            id: str | None = None) -> bytes:
    """The history Bundle of one resource, one type or the whole server."""
    unknown = sorted(set(args) - set(PARAMS))
    if unknown:
        raise BadRequest(f"history takes {', '.join(PARAMS[:4])}; {', '.join(unknown)} "
                         "is not supported")
    since, at = args.get("_since"), args.get("_at")
    count = max(1, min(_int("_count", args.get("_count"), c.default_count), c.max_count))
    offset = _int("_offset", args.get("_offset"), 0)
    # One more than asked tells whether a next page exists.
    versions = c.store.history(resource_type, id, since=since, at=at, count=count + 1,
                               offset=offset)
    if id and not versions and offset == 0 and (
            not (since or at) or not c.store.history(resource_type, id, count=1)):
        raise NotFound(f"{resource_type}/{id} is not known")  # filtered to none: an empty page
    more = len(versions) > count
    versions = versions[:count]
    path = "/".join(p for p in (resource_type, id) if p) + ("/" if resource_type else "")

    def link(start: int) -> str:
        params = [("_count", str(count))] + ([("_since", since)] if since else []) + (
            [("_at", at)] if at else [])
        if start:
            params.append(("_offset", str(start)))
        return f"{c.base}/{path}_history?{urlencode(params)}"

    links = [{"relation": "self", "url": link(offset)}]
    if offset:
        links.append({"relation": "previous", "url": link(max(offset - count, 0))})
    if more:
        links.append({"relation": "next", "url": link(offset + count)})
    return assemble("history", [_entry(c, s) for s in versions], links=links)
