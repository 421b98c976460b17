"""SMART Backend Services endpoints (on only with AUTH=smart): the discovery document
`.well-known/smart-configuration`, the token endpoint `auth/token`, and the audit trail as
read-only AuditEvent resources (`AuditEvent/<id>`, `AuditEvent?agent=&date=&entity=...`)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import jwt
from flask import Blueprint, Response, current_app, request

from ..auth.access import require
from ..auth.audit import CLIENT_SYSTEM, AuditQuery, to_fhir
from ..auth.registry import ALGORITHMS
from ..auth.tokens import TokenError
from ..errors import BadRequest, MethodNotAllowed, NotFound
from ..store.canonical import dumps
from .bundle import assemble, entry
from .context import ctx, public_base
from .responses import fhir_response
from .security import Auth

bp = Blueprint("smart", __name__)
SCOPES_SUPPORTED = ["system/*.cruds", "system/*.rs", "system/*.read", "system/*.write",
                    "system/AuditEvent.rs"]
_DATE_PREFIXES = ("ge", "gt", "le", "lt")
_AUDIT_PARAMS = ("agent", "date", "entity", "entity-type", "outcome", "type", "_count",
                 "_offset", "_format")


def _auth() -> Auth:
    auth: Auth | None = current_app.extensions.get("fhir_auth")
    if auth is None:
        raise NotFound("authorization is off on this server (start it with --auth smart)")
    return auth


def _release_base() -> str:
    top = request.blueprints[-1] if request.blueprints else ""
    release = "/R5" if top.endswith("_R5") else "/R4" if top.endswith("_R4") else ""
    return public_base() + release


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@bp.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    _auth()
    base = _release_base()
    return _json({
        "issuer": base,
        "token_endpoint": f"{base}/auth/token",
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    })


@bp.post("/auth/token")
def token() -> Response:
    auth = _auth()
    form = {k: v for k, v in request.form.items()}
    client = ""
    try:
        client, answer = auth.tokens.issue(form, f"{_release_base()}/auth/token")
    except TokenError as exc:
        client = _claimed_client(form.get("client_assertion", ""))
        _record(auth, client, exc.status, f"token refused: {exc.error}: {exc.description}")
        return _json({"error": exc.error, "error_description": exc.description}, exc.status)
    _record(auth, client, 200, f"token issued: {answer['scope']}")
    return _json(answer)


def _claimed_client(assertion: str) -> str:
    """The iss an assertion claims (unverified: who the refused request said it was)."""
    try:
        claimed = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return ""
    return claimed[:255] if isinstance(claimed, str) else ""


def _record(auth: Auth, client: str, status: int, detail: str) -> None:
    auth.audit.record("token", client, "POST", request.path, "", "", "", status, detail,
                      request.environ.get("fhir_adapter.request_id", ""))


@bp.route("/AuditEvent", methods=["POST", "PUT", "PATCH", "DELETE"])
@bp.route("/AuditEvent/<id>", methods=["PUT", "PATCH", "DELETE"])
def audit_write(id: str | None = None) -> Response:
    raise MethodNotAllowed("AuditEvent is read-only: the server records it")


@bp.get("/AuditEvent/<id>")
def audit_read(id: str) -> Response:
    auth = _auth()
    require("AuditEvent", "r")
    c = ctx()
    row = auth.audit.read(id)
    if row is None:
        raise NotFound(f"AuditEvent/{id} is not known")
    return fhir_response(dumps(to_fhir(row, c.version)), 200, c.mime, c.version)


def _query(args: list[tuple[str, str]]) -> AuditQuery:
    q = AuditQuery(count=min(20, int(current_app.config["FHIR_ADAPTER"]["MAX_COUNT"])))
    clients, types, entities, outcomes, kinds, dates = [], [], [], [], [], []
    for name, value in args:
        values = [v for v in value.split(",") if v]
        if name not in _AUDIT_PARAMS:
            raise BadRequest(f"AuditEvent search parameter {name} is not supported here "
                             f"(supported: {', '.join(_AUDIT_PARAMS[:-1])})")
        if name == "agent":
            clients += [v.split("|", 1)[1] if v.startswith(CLIENT_SYSTEM + "|") else v
                        for v in values]
        elif name == "entity":
            entities += values
        elif name == "entity-type":
            types += values
        elif name == "outcome":
            outcomes += [v.rsplit("|", 1)[-1] for v in values]
        elif name == "type":
            codes = {v.rsplit("|", 1)[-1] for v in values}
            kinds += [k for k, code in (("rest", "rest"), ("token", "110114")) if code in codes]
            if not kinds:
                kinds = ["none"]
        elif name == "date":
            prefix, text = value[:2], value[2:]
            if prefix not in _DATE_PREFIXES or not text[:4].isdigit():
                raise BadRequest(f"date={value}: use ge, gt, le or lt and a date or instant")
            dates.append((prefix, text))
        elif name in ("_count", "_offset"):
            if not value.isdigit():
                raise BadRequest(f"{name}={value} is not a whole number")
            if name == "_count":
                q.count = min(int(value), int(current_app.config["FHIR_ADAPTER"]["MAX_COUNT"]))
            else:
                q.offset = int(value)
    q.clients, q.resource_types, q.entities = clients, types, entities
    q.outcomes, q.kinds, q.dates = outcomes, kinds, dates
    return q


@bp.get("/AuditEvent")
def audit_search() -> Response:
    auth = _auth()
    require("AuditEvent", "s")
    c = ctx()
    args = list(request.args.items(multi=True))
    q = _query(args)
    rows, total = auth.audit.search(q)
    entries = [entry(f"{c.base}/AuditEvent/{r['id']}", dumps(to_fhir(r, c.version)),
                     {"search": {"mode": "match"}}) for r in rows]
    kept = [(k, v) for k, v in args if k not in ("_offset", "_format")]

    def link(offset: int) -> str:
        return f"{c.base}/AuditEvent?{urlencode([*kept, ('_offset', str(offset))])}"

    links = [{"relation": "self", "url": link(q.offset)}]
    if q.offset + len(rows) < total and q.count:
        links.append({"relation": "next", "url": link(q.offset + q.count)})
    return fhir_response(assemble("searchset", entries, total=total, links=links), 200,
                         c.mime, c.version)
