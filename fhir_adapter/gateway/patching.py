"""PATCH (R4 http.html#patch): JSON Patch (RFC 6902, `application/json-patch+json`), FHIRPath
Patch (a Parameters body, fhirpatch.html) and JSON Merge Patch (RFC 7386,
`application/merge-patch+json`, and what fhirpy's `patch()` sends: a partial resource as
`application/json`), on `[type]/[id]` and conditionally on `[type]?criteria`.

A patch is applied to the current version in the version the request speaks and the result
is written as an update: the same validation, both representations, If-Match (412 on
another version) and the version check of a concurrent writer, as a PUT gets.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from typing import Any

import jsonpatch
from flask import Blueprint, Response, request

import fhir_adapter.gateway.interactions as interactions

from ..auth.access import require
from ..errors import BadRequest, NotFound, PreconditionFailed
from ..store.canonical import dumps, loads
from .context import Ctx, ctx
from .interactions import Written, check_id, check_type, matches
from .negotiation import JSON_PATCH, MERGE_PATCH, content_type, read_json
from .patch_fhirpath import PatchError, apply_fhirpath_patch
from .responses import body_in, parse_etag
from .rest import _criteria, written

bp = Blueprint("patching", __name__)
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, "application/fhir+json", "application/json")


def _copy(resource: dict[str, Any]) -> dict[str, Any]:
    return loads(dumps(resource))  # keeps decimals' text, which deepcopy would not


def apply_json_patch(resource: dict[str, Any], ops: Any) -> dict[str, Any]:
    """`resource` with the RFC 6902 operations applied (422 when they do not apply)."""
    if not isinstance(ops, list) or not all(isinstance(o, dict) for o in ops):
        raise BadRequest("a JSON Patch body is an array of operation objects")
    try:
        patch = jsonpatch.JsonPatch(ops)
        return patch.apply(_copy(resource))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise PatchError(f"JSON Patch test failed: {exc}") from exc
    except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
        raise PatchError(f"JSON Patch does not apply: {exc}") from exc
    except jsonpatch.InvalidJsonPatch as exc:
        raise BadRequest(f"invalid JSON Patch: {exc}") from exc


def apply_merge_patch(resource: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(resource) if isinstance(resource, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


def apply_patch(resource: dict[str, Any], mime: str, body: Any, c: Ctx) -> dict[str, Any]:
    """Dispatch on the body's media type and shape: JSON Patch, FHIRPath Patch or merge."""
    if mime == JSON_PATCH or (isinstance(body, list) and mime != MERGE_PATCH):
        return apply_json_patch(resource, body)
    if not isinstance(body, dict):
        raise BadRequest(f"a {mime or 'JSON'} PATCH body is a Parameters resource (FHIRPath "
                         "Patch) or a partial resource (merge patch)")
    if mime != MERGE_PATCH and body.get("resourceType") == "Parameters":
        return apply_fhirpath_patch(resource, body, c.version)
    rtype = body.get("resourceType")
    if rtype not in (None, resource["resourceType"]):
        raise BadRequest(f"a merge patch for {resource['resourceType']} cannot carry "
                         f"resourceType {rtype}")
    return apply_merge_patch(_copy(resource), body)


def patch(c: Ctx, resource_type: str, id: str, mime: str, body: Any, *,
          if_match: int | None = None, where: str = "") -> Written:
    """Apply a patch to the current resource and write the result as an update (the
    version read is the one written over: a concurrent change answers 412)."""
    check_type(resource_type, write=True)
    check_id(id, write=True)  # NUL, spaces, 65 characters: 400, never a query with it
    # before the read: a patch's errors and its answer show the resource's content
    require(resource_type, "r", "patch (it reads the resource)")
    require(resource_type, "u", "patch")
    with c.store.transaction() as tx:
        c = replace(c, store=tx)
        tx.lock(f"{resource_type}/{id}")
        current = tx.read(resource_type, id)
        if if_match is not None and if_match != current.version_id:
            raise PreconditionFailed(f"If-Match names version {if_match}; {resource_type}/{id}"
                                     f" is at version {current.version_id}")
        resource = loads(body_in(current, c.version))
        patched = apply_patch(resource, mime, body, c)
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type:
            raise PatchError(f"the patch would change the resource type of {resource_type}/{id}")
        if patched.get("id") != id:
            raise PatchError(f"the patch would change the id of {resource_type}/{id}")
        return interactions.update(c, resource_type, id, patched,
                                   if_match=current.version_id, where=where)


def conditional_patch(c: Ctx, resource_type: str, criteria: str, mime: str, body: Any, *,
                      if_match: int | None = None, where: str = "") -> Written:
    """PATCH [type]?criteria: one match -> patch it, none -> 404, several -> 412."""
    check_type(resource_type, write=True)
    require(resource_type, "s", "conditional patch (it searches)")
    found = matches(c, resource_type, criteria)
    if not found:
        raise NotFound(f"no {resource_type} matches {criteria}: nothing to patch")
    if len(found) > 1:
        raise PreconditionFailed(f"{criteria} matches more than one {resource_type}")
    return patch(c, resource_type, found[0].id, mime, body, if_match=if_match, where=where)


def _body() -> tuple[str, Any]:
    mime, _ = content_type(request)
    return mime, read_json(request, PATCH_TYPES)


@bp.patch("/<rtype>/<id>")
def patch_instance(rtype: str, id: str) -> Response:
    c = ctx()
    mime, body = _body()
    return written(c, patch(c, rtype, id, mime, body,
                            if_match=parse_etag(request.headers.get("If-Match"))))


@bp.patch("/<rtype>")
def patch_conditional(rtype: str) -> Response:
    c = ctx()
    check_type(rtype, write=True)
    criteria = _criteria()
    if not criteria:
        raise BadRequest(f"PATCH {rtype} needs an id in the URL or search criteria")
    mime, body = _body()
    return written(c, conditional_patch(c, rtype, criteria, mime, body,
                                        if_match=parse_etag(request.headers.get("If-Match"))))


def entry_patch(resource: dict[str, Any], where: str) -> tuple[str, Any]:
    """A Bundle entry's patch: a Parameters resource (FHIRPath Patch) or a Binary whose
    `data` holds a JSON Patch (or merge patch) of its `contentType`."""
    if resource.get("resourceType") == "Parameters":
        return "application/fhir+json", resource
    if resource.get("resourceType") != "Binary":
        raise BadRequest(f"{where}: a PATCH entry's resource is a Parameters (FHIRPath Patch) "
                         "or a Binary (JSON Patch)")
    mime = str(resource.get("contentType", "")).split(";")[0].strip().lower()
    if mime not in (JSON_PATCH, MERGE_PATCH):
        raise BadRequest(f"{where}: Binary.contentType {mime!r} is not {JSON_PATCH} or "
                         f"{MERGE_PATCH}")
    try:
        return mime, loads(base64.b64decode(resource.get("data", ""), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest(f"{where}: Binary.data is not base64 of a JSON patch: {exc}") from exc
