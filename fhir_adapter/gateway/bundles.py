"""POST [base] with a transaction or batch Bundle (R4 http.html#transaction).

A transaction is all or nothing, in one store transaction: `urn:uuid` fullUrls get their
server ids first and every reference to them is rewritten, then entries run in the order R4
prescribes (DELETE, POST, PUT, GET); any failure rolls everything back and answers with the
failing entry's OperationOutcome. A batch runs each entry on its own and reports each result.
"""

from __future__ import annotations

from dataclasses import replace
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request

import fhir_adapter.gateway.interactions as interactions
import fhir_adapter.gateway.patching as patching

from ..errors import BadRequest, FhirError, Issue
from .bundle import assemble, entry
from .context import Ctx, ctx
from .entries import Entry, parse_entry
from .limits import check_entries
from .negotiation import read_json
from .responses import body_in, etag, fhir_response, outcome
from .rest import prefer

bp = Blueprint("bundles", __name__)
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _located(exc: FhirError, index: int) -> FhirError:
    """The same error, its issues pointing at Bundle.entry[index]."""
    where = f"Bundle.entry[{index}]"
    issues = [i if i.expression and i.expression.startswith(where)
              else Issue(i.severity, i.code, f"{where}: {i.message}", i.expression or where)
              for i in exc.issues]
    located = type(exc)(f"{where}: {exc.message}", issues, exc.headers)
    located.status = exc.status
    return located


def _run(c: Ctx, e: Entry, want: str) -> bytes:
    """Execute one entry; its Bundle.entry in the response (fullUrl, resource?, response)."""
    where = f"Bundle.entry[{e.index}].resource"
    if e.method == "GET":
        body, status = e.get(c, c.store)
        return entry(None, body, {"response": {"status": _status(status)}})
    if e.method == "DELETE":
        gone = (interactions.conditional_delete(c, e.type, e.criteria) if e.criteria
                else interactions.delete(c, e.type, e.id or ""))
        response: dict[str, Any] = {"status": _status(204 if gone else 200)}
        if gone:
            response["etag"] = etag(gone.version_id)
        return entry(None, None, {"response": response})
    if e.method == "POST":
        done = interactions.create(c, e.type, e.resource, if_none_exist=e.if_none_exist,
                                   id=e.assigned_id, where=where)
    elif e.method == "PATCH":
        done = patching.patch(c, e.type, e.id or "", *patching.entry_patch(e.resource, where),
                              if_match=e.if_match, where=where)
    elif e.criteria:
        done = interactions.conditional_update(c, e.type, e.criteria, e.resource,
                                               if_match=e.if_match, where=where)
    else:
        done = interactions.update(c, e.type, e.id or "", e.resource,
                                   if_match=e.if_match, where=where)
    s = done.stored
    response = {"status": _status(done.status),
                "location": f"{s.resource_type}/{s.id}/_history/{s.version_id}",
                "etag": etag(s.version_id), "lastModified": s.last_updated}
    body = None
    if want == "representation":
        body = body_in(s, c.version)
    elif want == "operationoutcome":
        response["outcome"] = outcome([Issue("information", "informational",
                                             f"{s.resource_type}/{s.id} version "
                                             f"{s.version_id}")])
    return entry(f"{c.base}/{s.resource_type}/{s.id}", body, {"response": response})


def _rewrite(value: Any, refs: dict[str, str]) -> Any:
    """Replace references to in-Bundle fullUrls by the resources' server ids."""
    if isinstance(value, dict):
        out = {k: _rewrite(v, refs) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref.startswith("urn:uuid:"):
            if ref not in refs:
                raise BadRequest(f"reference {ref} names no entry of this transaction")
            out["reference"] = refs[ref]
        return out
    if isinstance(value, list):
        return [_rewrite(v, refs) for v in value]
    return value


def _transaction(c: Ctx, entries: list[Entry], want: str) -> bytes:
    results: dict[int, bytes] = {}
    touched: set[tuple[str, str]] = set()
    with c.store.transaction() as tx:
        c = replace(c, store=tx)
        refs: dict[str, str] = {}
        for e in entries:
            try:
                e.resolve(c, tx, refs)
            except FhirError as exc:
                raise _located(exc, e.index) from exc
            key = e.target_key()
            if key and key in touched:
                raise BadRequest(f"Bundle.entry[{e.index}]: {key[0]}/{key[1]} appears twice "
                                 "in this transaction")
            if key:
                touched.add(key)
        for e in entries:
            if e.resource is not None:
                try:
                    e.resource = _rewrite(e.resource, refs)
                except FhirError as exc:
                    raise _located(exc, e.index) from exc
        for e in sorted(entries, key=lambda e: _ORDER[e.method]):
            try:
                results[e.index] = _run(c, e, want)
            except FhirError as exc:
                raise _located(exc, e.index) from exc
    return assemble("transaction-response", [results[e.index] for e in entries])


def _batch(c: Ctx, raw: list[Any], want: str) -> bytes:
    out = []
    for index, item in enumerate(raw):
        try:
            out.append(_run(c, parse_entry(c, index, item), want))
        except FhirError as exc:
            exc = _located(exc, index)
            out.append(entry(None, None, {"response": {"status": _status(exc.status),
                                                       "outcome": exc.outcome()}}))
    return assemble("batch-response", out)


@bp.post("/", strict_slashes=False)
def transaction_or_batch() -> Response:
    c = ctx()
    bundle = read_json(request)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base takes a Bundle of type transaction or batch")
    kind = bundle.get("type")
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise BadRequest("Bundle.entry must be a list", [Issue("error", "structure",
                         "Bundle.entry must be a list", "Bundle.entry")])
    check_entries(len(raw))
    want = prefer().get("return", "representation")
    if kind == "transaction":
        entries = [parse_entry(c, i, item) for i, item in enumerate(raw)]
        body = _transaction(c, entries, want)
    elif kind == "batch":
        body = _batch(c, raw, want)
    else:
        raise BadRequest(f"Bundle.type {kind!r}: POST to the base takes transaction or batch",
                         [Issue("error", "value", "expected transaction or batch",
                                "Bundle.type")])
    return fhir_response(body, 200, c.mime, c.version)
