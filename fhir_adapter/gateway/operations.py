"""Operations: `$validate` (any served type), ConceptMap `$translate`, ValueSet `$expand` (the
ValueSets of our ConceptMaps, fhir_adapter.valuesets), and `$ingest` (a source file in, mapped
and stored like `fhir-adapter load`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from .. import conceptmaps, valuesets
from ..auth.access import require, require_all
from ..errors import BadRequest, Issue, NotFound
from ..store.canonical import dumps, loads
from ..validation import validate
from .context import STORED_TYPES, ctx
from .ingest import ingest
from .interactions import check_id, check_type
from .negotiation import read_json
from .responses import fhir_response, outcome_bytes

bp = Blueprint("operations", __name__)
# The types $ingest may write: what a source yields depends on its content (a Bundle may hold
# any served type), so a token needs create and update on all of them.
INGEST_TYPES = STORED_TYPES


def parameters(body: Any) -> dict[str, list[Any]]:
    """A Parameters resource as {name: [value or resource, ...]}."""
    out: dict[str, list[Any]] = {}
    for p in body.get("parameter", []) if isinstance(body, dict) else []:
        value = p.get("resource", next((v for k, v in p.items() if k.startswith("value")), None))
        out.setdefault(p.get("name", ""), []).append(value)
    return out


def _validated(rtype: str, resource: Any) -> Response:
    c = ctx()
    if isinstance(resource, dict) and resource.get("resourceType") not in (rtype, None):
        raise BadRequest(f"$validate on {rtype} got a {resource.get('resourceType')}")
    issues = validate(resource, c.version)
    if not issues:
        issues = [Issue("information", "informational",
                        f"valid FHIR {c.version} {rtype}: no issues found")]
    # 200 either way: the operation ran; its result is the OperationOutcome (R4 $validate).
    return fhir_response(outcome_bytes(issues), 200, c.mime, c.version)


@bp.post("/<rtype>/$validate")
def validate_type(rtype: str) -> Response:
    check_type(rtype)
    require(rtype, "r", "$validate")
    body = read_json(request)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        given = parameters(body).get("resource") or [None]
        if given[0] is None:
            raise BadRequest("$validate Parameters need a 'resource' parameter")
        body = given[0]
    return _validated(rtype, body)


@bp.route("/<rtype>/<id>/$validate", methods=["GET", "POST"])
def validate_instance(rtype: str, id: str) -> Response:
    c = ctx()
    check_type(rtype)
    require(rtype, "r", "$validate")
    check_id(id)
    if request.method == "POST" and request.content_length:
        return validate_type(rtype)
    stored = c.store.read(rtype, id)
    return _validated(rtype, loads(stored.json(c.version)) if c.version in stored.body
                      else {"resourceType": rtype})


_R5_RELATIONSHIP = {"equivalent": "equivalent", "equal": "equivalent", "relatedto": "related-to",
                    "inexact": "related-to", "wider": "source-is-narrower-than-target",
                    "subsumes": "source-is-narrower-than-target",
                    "narrower": "source-is-broader-than-target",
                    "specializes": "source-is-broader-than-target",
                    "unmatched": "not-related-to", "disjoint": "not-related-to"}


def _translate_args() -> dict[str, str]:
    args = {k: v for k, v in request.args.items()}
    if request.method == "POST":
        for name, values in parameters(read_json(request)).items():
            value = values[0]
            if isinstance(value, dict) and "code" in value:  # coding
                args.setdefault("code", value["code"])
                if value.get("system"):
                    args.setdefault("system", value["system"])
            elif isinstance(value, dict) and value.get("coding"):  # codeableConcept
                args.setdefault("code", value["coding"][0].get("code", ""))
                args.setdefault("system", value["coding"][0].get("system", ""))
            elif value is not None:
                args.setdefault(name, str(value))
    # R5 spellings of the same inputs
    for r5, r4 in (("sourceCode", "code"), ("sourceSystem", "system"),
                   ("targetSystem", "targetsystem")):
        if r5 in args:
            args.setdefault(r4, args[r5])
    return args


def _maps_for(map_id: str | None, url: str | None, system: str | None,
              target_system: str | None) -> list[dict[str, Any]]:
    if map_id or url:
        try:
            return [conceptmaps.get_map(map_id or url or "")]
        except KeyError:
            raise NotFound(f"no ConceptMap {map_id or url}") from None
    chosen = []
    for cm in conceptmaps.all_maps().values():
        groups = cm.get("group", [])
        if system and not any(g.get("source") == system for g in groups):
            continue
        if target_system and not any(g.get("target") == target_system for g in groups):
            continue
        chosen.append(cm)
    return chosen


@bp.route("/ConceptMap/$translate", methods=["GET", "POST"], defaults={"id": None})
@bp.route("/ConceptMap/<id>/$translate", methods=["GET", "POST"])
def translate(id: str | None) -> Response:
    c = ctx()
    require("ConceptMap", "r", "$translate")
    args = _translate_args()
    code = args.get("code")
    if not code:
        raise BadRequest("$translate needs a code (code, coding or codeableConcept)")
    if not (id or args.get("url") or args.get("system")):
        raise BadRequest("$translate needs a map (url or ConceptMap/[id]) or a source system")
    params: list[dict[str, Any]] = []
    for cm in _maps_for(id, args.get("url"), args.get("system"), args.get("targetsystem")):
        for target in conceptmaps.translate(cm["id"], code):
            match: list[dict[str, Any]] = []
            if c.version == "R4":
                match.append({"name": "equivalence", "valueCode": target.equivalence})
            else:
                match.append({"name": "relationship", "valueCode":
                              _R5_RELATIONSHIP.get(target.equivalence, "related-to")})
            if target.code:
                match.append({"name": "concept", "valueCoding": target.coding()})
            match.append({"name": "source" if c.version == "R4" else "originMap",
                          "valueUri" if c.version == "R4" else "valueCanonical": cm["url"]})
            params.append({"name": "match", "part": match})
    found = any(p["part"][0]["valueCode"] not in ("unmatched", "disjoint", "not-related-to")
                for p in params)
    head = [{"name": "result", "valueBoolean": found}]
    if not found:
        head.append({"name": "message", "valueString": f"no translation for code {code!r}"})
    body = {"resourceType": "Parameters", "parameter": head + params}
    return fhir_response(dumps(body), 200, c.mime, c.version)


# $expand inputs we answer; any other (filter, count, offset, ...) would narrow or page the
# expansion: a 400, never ignored.
_EXPAND_INPUTS = ("url", "valueSetVersion", "_format", "_pretty")


@bp.route("/ValueSet/$expand", methods=["GET", "POST"], defaults={"id": None})
@bp.route("/ValueSet/<id>/$expand", methods=["GET", "POST"])
def expand(id: str | None) -> Response:
    """The ValueSet with an `expansion`: every code it holds (ours are small and flat)."""
    c = ctx()
    require("ValueSet", "r", "$expand")
    args: dict[str, str] = dict(request.args.items())
    if request.method == "POST":
        for name, values in parameters(read_json(request)).items():
            args.setdefault(name, str(values[0]))
    extra = sorted(set(args) - set(_EXPAND_INPUTS))
    if extra:
        raise BadRequest(f"$expand input {', '.join(extra)} is not supported (inputs: url, "
                         "valueSetVersion)")
    if id:
        check_id(id)
    elif not args.get("url"):
        raise BadRequest("$expand needs a ValueSet: url, or ValueSet/[id]/$expand")
    reference = id or args["url"]
    version = args.get("valueSetVersion")
    try:
        vs = valuesets.get(f"{reference}|{version}" if version else reference)
    except valuesets.UnknownValueSet as exc:
        if id:
            raise NotFound(str(exc)) from None
        raise BadRequest(str(exc)) from None
    contains = [{"system": s, "code": code, **({"display": shown} if shown else {})}
                for s, code, shown in valuesets.expand(vs["url"])]
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    expansion = {"identifier": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                             f"{vs['url']}|{vs['version']}")),
                 "timestamp": now, "total": len(contains), "offset": 0, "contains": contains}
    return fhir_response(dumps({**vs, "expansion": expansion}), 200, c.mime, c.version)


@bp.post("/$ingest")
def ingest_source() -> Response:
    c = ctx()
    # What a source creates depends on its content: write on every type $ingest can write.
    require_all(INGEST_TYPES, "c", "$ingest")
    require_all(INGEST_TYPES, "u", "$ingest")
    if "respond-async" in request.headers.get("Prefer", ""):  # ingestjobs.py
        from .ingestjobs import kick_off

        return kick_off(c, request)
    return fhir_response(dumps(ingest(c, request)), 200, c.mime, c.version)
