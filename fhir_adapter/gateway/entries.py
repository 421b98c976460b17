"""One entry of a transaction or batch Bundle: its request parsed (method, type, id, criteria,
If-* headers), its id resolved before anything is written, and GETs executed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import fhir_adapter.gateway.searching as searching

from ..auth.access import require
from ..errors import BadRequest, Gone, MethodNotAllowed, PreconditionFailed
from ..store.base import Store
from .context import Ctx, for_type, public_base
from .interactions import check_type, matches
from .responses import body_in, parse_etag

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")


@dataclass
class Entry:
    """A Bundle entry's request, ready to run."""

    index: int
    method: str
    type: str
    id: str | None = None
    vid: str | None = None
    criteria: str | None = None  # conditional PUT/DELETE, or a GET search
    resource: Any = None
    full_url: str | None = None
    if_match: int | None = None
    if_none_exist: str | None = None
    assigned_id: str | None = None  # POST: the id chosen before anything is written

    def resolve(self, c: Ctx, store: Store, refs: dict[str, str]) -> None:
        """Fix this entry's target id (conditional matches included) and record what its
        fullUrl stands for, so other entries' references can be rewritten."""
        c = replace(c, store=store)
        if self.method == "POST":
            found = matches(c, self.type, self.if_none_exist) if self.if_none_exist else []
            if len(found) > 1:
                raise PreconditionFailed(f"ifNoneExist {self.if_none_exist} matches more than "
                                         f"one {self.type}")
            self.assigned_id = found[0].id if found else str(uuid.uuid4())
            target = self.assigned_id
        elif self.method in ("PUT", "DELETE") and self.criteria:
            found = matches(c, self.type, self.criteria)
            if len(found) > 1:
                raise PreconditionFailed(f"{self.criteria} matches more than one {self.type}")
            if found:
                target = found[0].id
            elif self.method == "PUT":
                given = self.resource.get("id") if isinstance(self.resource, dict) else None
                target = given or str(uuid.uuid4())
            else:
                return
            self.id, self.criteria = target, None
        else:
            target = self.id or ""
        if self.full_url and self.method in ("POST", "PUT"):
            refs[self.full_url] = f"{self.type}/{target}"
        if self.method == "PUT" and isinstance(self.resource, dict):
            self.resource.setdefault("id", target)

    def target_key(self) -> tuple[str, str] | None:
        """(type, id) this entry writes, to refuse two writes of one resource."""
        if self.method in ("PUT", "DELETE") and self.id:
            return self.type, self.id
        return None

    def get(self, c: Ctx, store: Store) -> tuple[bytes, int]:
        """GET entries: read, vread or search (its searchset Bundle as the entry resource)."""
        c = for_type(replace(c, store=store), self.type)
        store = c.store
        if self.id is not None:
            require(self.type, "r")
        if self.id is None:
            params = parse_qsl(self.criteria or "", keep_blank_values=True)
            req = searching.parse(c, self.type, params, strict=False)
            return searching.run(c, req, strict=False), 200
        if self.vid is not None:
            if not self.vid.isdigit():
                raise BadRequest(f"version {self.vid!r} is not a number")
            stored = store.vread(self.type, self.id, int(self.vid))
            if stored.deleted:
                raise Gone(f"{self.type}/{self.id} version {self.vid} is a deletion")
        else:
            stored = store.read(self.type, self.id)
        return body_in(stored, c.version), 200


def _relative(c: Ctx, url: str) -> str:
    for base in (c.base, public_base()):
        if url.startswith(base + "/"):
            return url[len(base) + 1:]
    if urlsplit(url).scheme:
        raise BadRequest(f"request.url {url} is not on this server ({c.base})")
    return url.lstrip("/")


def parse_entry(c: Ctx, index: int, item: Any) -> Entry:
    """Check one Bundle.entry and turn its request into an Entry (400 when malformed)."""
    where = f"Bundle.entry[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
        raise BadRequest(f"{where} has no request")
    req = item["request"]
    method = str(req.get("method", "")).upper()
    if method == "PATCH":
        raise MethodNotAllowed(f"{where}: PATCH is not supported")
    if method not in METHODS:
        raise BadRequest(f"{where}: request.method {req.get('method')!r} is not one of "
                         + ", ".join(METHODS))
    url = req.get("url")
    if not isinstance(url, str) or not url.strip():
        raise BadRequest(f"{where} has no request.url")
    path, _, query = _relative(c, url.strip()).partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise BadRequest(f"{where}: request.url {url} names no resource type")
    entry = Entry(index, "GET" if method == "HEAD" else method, parts[0],
                  resource=item.get("resource"), full_url=item.get("fullUrl"),
                  if_match=parse_etag(req.get("ifMatch")), if_none_exist=req.get("ifNoneExist"))
    check_type(entry.type, write=entry.method != "GET")
    shape = len(parts)
    if shape == 2 and parts[1] == "_search" and entry.method == "GET":
        pass
    elif shape == 2:
        entry.id = parts[1]
    elif shape == 4 and parts[2] == "_history":
        entry.id, entry.vid = parts[1], parts[3]
    elif shape != 1:
        raise BadRequest(f"{where}: request.url {url} is not [type], [type]/[id] or "
                         "[type]/[id]/_history/[vid]")
    entry.criteria = query or None
    if entry.method in ("POST", "PUT") and not isinstance(entry.resource, dict):
        raise BadRequest(f"{where}: a {entry.method} needs a resource")
    if entry.method == "POST" and entry.id is not None:
        raise BadRequest(f"{where}: POST goes to [type], not {url}")
    if entry.method in ("PUT", "DELETE") and not (entry.id or entry.criteria):
        raise BadRequest(f"{where}: {entry.method} needs [type]/[id] or [type]?criteria")
    if entry.vid is not None and entry.method != "GET":
        raise BadRequest(f"{where}: only GET may name a version")
    return entry
