"""The FHIR interactions on one resource (R4 http.html): read, vread, create, update, delete
and their conditional forms. Independent of Flask, so the REST routes and the entries of a
transaction or batch Bundle run exactly the same code."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from ..auth.access import require
from ..errors import BadRequest, MethodNotAllowed, NotFound, PreconditionFailed
from ..store.base import SearchQuery, Stored
from ..store.canonical import without_version_meta
from .context import READ_ONLY_TYPES, STORED_TYPES, Ctx
from .versions import representations


@dataclass(frozen=True)
class Written:
    """The result of a write: what is stored now and the HTTP status it earns."""

    stored: Stored
    status: int  # 201 created, 200 updated / unchanged / conditional match


_SOURCE_OF = {"ConceptMap": "the mappings/ folder (add a ConceptMap file there instead)",
              "StructureDefinition": "the extensions fhir-adapter defines "
                                     "(fhir_adapter/data/extensions/)",
              "CodeSystem": "the code systems fhir-adapter publishes",
              "ValueSet": "the ConceptMaps of the mappings/ folder (fhir_adapter.valuesets)"}


def check_type(resource_type: str, write: bool = False) -> None:
    """404 for a type this server does not serve; 405 for a write to a read-only type."""
    if resource_type in STORED_TYPES:
        return
    if resource_type == "AuditEvent" and write:  # served by gateway/smart.py, never written
        raise MethodNotAllowed("AuditEvent is read-only: the server records it")
    if resource_type in READ_ONLY_TYPES:
        if write:
            raise MethodNotAllowed(f"{resource_type} is read-only here: it is served from "
                                   + _SOURCE_OF[resource_type])
        return
    raise NotFound(f"resource type {resource_type!r} is not served here; served types: "
                   + ", ".join(STORED_TYPES + READ_ONLY_TYPES))


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_LARGEST_VERSION = 2**63 - 1  # a BIGINT: beyond it no version exists (and SQLite overflows)


def check_id(resource_id: str, write: bool = False) -> None:
    """For what cannot be a FHIR id ([A-Za-z0-9-.]{1,64}: NUL, spaces, 65 characters): 404
    to a read (no resource has it), 400 to a write; never a query with it."""
    if not _ID.fullmatch(resource_id):
        error = BadRequest if write else NotFound
        raise error(f"{resource_id[:80]!r} is not a FHIR id (1 to 64 of A-Z, a-z, 0-9, '-' "
                    "and '.')")


def version_number(resource_type: str, resource_id: str, vid: str) -> int:
    """A vread's version id as a number; 404 for one that no version can have."""
    if not vid.isascii() or not vid.isdigit() or int(vid) > _LARGEST_VERSION:
        raise NotFound(f"{resource_type}/{resource_id} has no version {vid[:40]!r} (versions "
                       "are whole numbers)")
    return int(vid)


def criteria_params(criteria: str) -> list[tuple[str, str]]:
    """'identifier=s|v&status=active' (a query string without '?') -> parameter pairs."""
    params = [(k, v) for k, v in parse_qsl(criteria.lstrip("?"), keep_blank_values=True)
              if not k.startswith("_format")]
    if not params:
        raise BadRequest("conditional criteria are empty")
    return params


def matches(c: Ctx, resource_type: str, criteria: str, limit: int = 2
            ) -> list[Stored]:
    """Up to `limit` current resources matching the criteria (strict: an unknown parameter in
    a conditional request would otherwise match everything)."""
    query = SearchQuery(resource_type, c.version, criteria_params(criteria), count=limit,
                        total="none", strict=True)
    return list(c.store.search(query).matches)


def _prepared(resource: Any, resource_type: str, where: str) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise BadRequest(f"{where or 'the body'} must be a JSON object (a FHIR resource)")
    actual = resource.get("resourceType")
    if actual != resource_type:
        raise BadRequest(f"{where or 'the body'} is a {actual or 'resource without type'}, "
                         f"but the URL names {resource_type}")
    # versionId and lastUpdated are the server's to set; profile, tag, security stay.
    return without_version_meta(resource)


def _with_id(resource: dict[str, Any], id: str) -> dict[str, Any]:
    # Keep FHIR element order: resourceType, id, then the rest as the client wrote it.
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id")}
    return {"resourceType": resource["resourceType"], "id": id, **rest}


def create(c: Ctx, resource_type: str, resource: Any, *,
           if_none_exist: str | None = None, id: str | None = None, where: str = "") -> Written:
    """Create with a server-assigned id (a client id is ignored, as R4 says); with
    If-None-Exist: 0 matches -> create (201), 1 -> that resource (200), more -> 412."""
    check_type(resource_type, write=True)
    require(resource_type, "c")
    resource = _with_id(_prepared(resource, resource_type, where), id or str(uuid.uuid4()))
    reps = representations(resource, c.version, where)
    # The store serialises equal conditional creates, so exactly one of concurrent ones writes.
    result = c.store.create(reps, if_none_exist=if_none_exist, version=c.version)
    return Written(result.stored, 201 if result.outcome == "created" else 200)


def update(c: Ctx, resource_type: str, id: str, resource: Any, *,
           if_match: int | None = None, where: str = "") -> Written:
    """Update (or create with the client's id when there is none): 201 created, 200 else;
    If-Match on another version -> 412."""
    check_type(resource_type, write=True)
    require(resource_type, "u")
    resource = _prepared(resource, resource_type, where)
    body_id = resource.get("id")
    if body_id is None:
        raise BadRequest(f"{where or 'the body'} has no id; an update needs the id of the URL "
                         f"({id})")
    if body_id != id:
        raise BadRequest(f"{where or 'the body'} has id {body_id!r} but the URL names {id!r}")
    reps = representations(_with_id(resource, id), c.version, where)
    result = c.store.update(reps, if_match=if_match)
    return Written(result.stored, 201 if result.outcome == "created" else 200)


def conditional_update(c: Ctx, resource_type: str, criteria: str, resource: Any,
                       *, if_match: int | None = None, where: str = "") -> Written:
    """PUT [type]?criteria: no match -> create, one match -> update it, more -> 412."""
    check_type(resource_type, write=True)
    require(resource_type, "u")
    resource = _prepared(resource, resource_type, where)
    with c.store.transaction() as tx:
        c = replace(c, store=tx)
        # Two conditional updates with the same criteria must not both see "no match".
        tx.lock(f"{resource_type}?{sorted(criteria_params(criteria))}")
        found = matches(c, resource_type, criteria)
        if len(found) > 1:
            raise PreconditionFailed(f"{criteria} matches more than one {resource_type}")
        if found:
            target = found[0].id
            if resource.get("id") not in (None, target):
                raise BadRequest(f"the body has id {resource['id']!r} but the criteria match "
                                 f"{resource_type}/{target}")
        else:
            target = resource.get("id") or str(uuid.uuid4())
        return update(c, resource_type, target, _with_id(resource, target),
                      if_match=if_match, where=where)


def delete(c: Ctx, resource_type: str, id: str) -> Stored | None:
    """Delete (a tombstone); None when there was nothing to delete (still a success)."""
    check_type(resource_type, write=True)
    require(resource_type, "d")
    return c.store.delete(resource_type, id)


def conditional_delete(c: Ctx, resource_type: str, criteria: str) -> Stored | None:
    """DELETE [type]?criteria: deletes the one match; several -> 412 (single delete only)."""
    check_type(resource_type, write=True)
    require(resource_type, "d")
    with c.store.transaction() as tx:
        tx.lock(f"{resource_type}?{sorted(criteria_params(criteria))}")
        found = matches(replace(c, store=tx), resource_type, criteria)
        if len(found) > 1:
            raise PreconditionFailed(f"{criteria} matches more than one {resource_type}; "
                                     "this server deletes one resource per conditional delete")
        return tx.delete(resource_type, found[0].id) if found else None
