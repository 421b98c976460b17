"""GET /metadata: the CapabilityStatement, generated from what this server really does: the
types it serves, their interactions, every search parameter the store indexes for the
requested FHIR version, the includes those parameters allow, and the operations.

With authorization on (AUTH=smart), `rest.security` names SMART-on-FHIR and carries the
oauth-uris extension (the token endpoint), and AuditEvent is listed (read and search only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, current_app

import fhir_adapter.gateway.searchparameters as searchparameters
import fhir_adapter.gateway.terminology as terminology

from .. import __version__, extension_defs
from ..mapping import own_terms
from ..store.canonical import dumps
from ..store.chains import MAX_DEPTH
from ..store.search import modifiers
from ..store.searchparams import search_params
from ..validation import FHIR_RELEASE, FhirVersion
from .context import STORED_TYPES, ctx
from .responses import fhir_response
from .security import auth_enabled

bp = Blueprint("capability", __name__)
_STARTED = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
HL7_OPS = "http://hl7.org/fhir/OperationDefinition/"
OWN_OPS = "https://fhir-adapter.dev/fhir/OperationDefinition/"
COMPARTMENT = "http://hl7.org/fhir/CompartmentDefinition/patient"  # gateway/compartments.py
BULK_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
BULK_EXPORT_LEVEL = {
    "Group": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    "Patient": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}
WRITE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance",
                      "history-type", "create", "search-type")


# The searchParam backbone has no element for modifiers (R4, R5): `documentation` ends with
# this sentence (store.search.modifiers), which the conformance tests read back.
MODIFIERS_SAID = " Modifiers: "
# What a reference parameter's entry adds to its documentation (store/chains.py answers it).
CHAINING = (f"Chained (`{{code}}:Type.param=` or untyped `{{code}}.param=`, several links: at "
            f"most {MAX_DEPTH} per parameter, `_has` levels included); `{{code}}:identifier=` "
            "matches Reference.identifier.")
HAS = {"name": "_has", "type": "special",
       "documentation": "Reverse chaining on every type: _has:Type:reference:parameter=value, "
                        "whose parameter may be a chain or another _has (at most "
                        f"{MAX_DEPTH} links per parameter). Type:reference is any of the "
                        "searched type's searchRevInclude entries."}


def _search_params(version: FhirVersion, rtype: str) -> list[dict[str, Any]]:
    out = []
    for code, param in sorted(search_params(version, rtype).items()):
        entry = {"name": code, "definition": param.url, "type": param.type}
        said = param.description.split("\n", 1)[0][:500].rstrip().rstrip(".")
        doc = f"{said}." if said else ""
        if param.type == "reference":
            doc = f"{doc} {CHAINING.format(code=code)}".strip()
        entry["documentation"] = (f"{doc}{MODIFIERS_SAID}" if doc else MODIFIERS_SAID.lstrip()) \
            + ", ".join(f":{m}" for m in modifiers(param)) + "."
        out.append(entry)
    return out


def _includes(version: FhirVersion, rtype: str) -> tuple[list[str], list[str]]:
    forward = [f"{rtype}:{code}" for code, p in sorted(search_params(version, rtype).items())
               if p.type == "reference"]
    reverse = [f"{source}:{code}" for source in STORED_TYPES
               for code, p in sorted(search_params(version, source).items())
               if p.type == "reference" and (not p.targets or rtype in p.targets)]
    # `*` and `Type:*` (every reference parameter of the type) are served (gateway/includes.py).
    return (["*", f"{rtype}:*", *forward] if forward else []), reverse


def _stored_type(version: FhirVersion, rtype: str) -> dict[str, Any]:
    include, revinclude = _includes(version, rtype)
    out: dict[str, Any] = {
        "type": rtype,
        "interaction": [{"code": code} for code in WRITE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "full-support",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
    }
    if include:
        out["searchInclude"] = include
    if revinclude:
        out["searchRevInclude"] = revinclude
    out["searchParam"] = _search_params(version, rtype)
    out["operation"] = [{"name": "validate", "definition": HL7_OPS + "Resource-validate"}]
    if rtype == "ResearchStudy":  # Bulk Data's pattern over one study: gateway/bulkexport.py
        out["operation"].append({"name": "export",
                                 "definition": OWN_OPS + "ResearchStudy-export"})
    elif rtype in ("Group", "Patient"):  # the Bulk Data IG's group- and patient-level export
        out["operation"].append({"name": "export", "definition": BULK_EXPORT_LEVEL[rtype]})
    return out


def _concept_map(version: FhirVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "ConceptMap"}
    if version in terminology.served_versions():
        out["interaction"] = [{"code": c} for c in ("read", "vread", "history-instance",
                                                    "history-type", "search-type")]
        out["versioning"] = "versioned"
        out["readHistory"] = True
        out["conditionalRead"] = "full-support"
        out["searchParam"] = _search_params(version, "ConceptMap")
    else:
        out["documentation"] = ("The ConceptMaps (mappings/) are R4-shaped: read and search "
                                "them as R4; $translate works in both versions.")
    out["operation"] = [{"name": "translate", "definition": HL7_OPS + "ConceptMap-translate"}]
    return out


OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def _security(base: str) -> dict[str, Any]:
    return {
        "extension": [{"url": OAUTH_URIS, "extension": [
            {"url": "token", "valueUri": f"{base}/auth/token"}]}],
        "service": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"}]}],
        "description": "SMART Backend Services: a client_credentials grant with a signed JWT "
                       "assertion (RS384 or ES384) at the token endpoint; system/ scopes "
                       "(v2 .cruds, v1 .read/.write). See .well-known/smart-configuration."}


def _audit_event(version: FhirVersion) -> dict[str, Any]:
    return {"type": "AuditEvent",
            "documentation": "Recorded by the server for every request and token; read-only.",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": n, "type": t} for n, t in (
                ("agent", "reference"), ("date", "date"), ("entity", "reference"),
                ("entity-type", "token"), ("outcome", "token"), ("type", "token"))]}


def _read_only(version: FhirVersion, rtype: str, documentation: str) -> dict[str, Any]:
    return {"type": rtype, "documentation": documentation,
            "interaction": [{"code": c} for c in ("read", "vread", "history-instance",
                                                  "history-type", "search-type")],
            "versioning": "versioned", "readHistory": True, "conditionalRead": "full-support",
            "searchParam": _search_params(version, rtype)}


def _conformance(version: FhirVersion) -> list[dict[str, Any]]:
    """Our extensions' StructureDefinitions and our CodeSystems (read-only), each listed."""
    sds = _read_only(version, "StructureDefinition", "The extensions fhir-adapter defines "
                     "(read, search by url): " + ", ".join(extension_defs.specs()))
    codes = _read_only(version, "CodeSystem", "The code systems fhir-adapter publishes for "
                       "vocabularies without a registered URI: " + ", ".join(
                           cs["url"] for cs in own_terms.code_systems()))
    sets = _read_only(version, "ValueSet", "The ValueSets our ConceptMaps imply (the codes "
                      "each maps from and to), generated from mappings/: the values token "
                      "parameters take with :in and :not-in.")
    sets["operation"] = [{"name": "expand", "definition": HL7_OPS + "ValueSet-expand"}]
    return [sds, codes, sets]


@lru_cache(maxsize=16)  # keyed by base: bounded, the Host header can vary
def capability_statement(version: FhirVersion, base: str, secured: bool = False) -> bytes:
    """The CapabilityStatement for `version` with links under `base`, serialised."""
    resources = [_stored_type(version, t) for t in STORED_TYPES]
    resources.append(_concept_map(version))
    if secured:
        resources.append(_audit_event(version))
    resources.append(searchparameters.capability())
    resources += _conformance(version)
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "fhir-adapter",
        "url": f"{base}/metadata",
        "version": __version__,
        "name": "FhirAdapterGateway",
        "title": "fhir-adapter FHIR gateway for clinical-trial data",
        "status": "active",
        "experimental": False,
        "date": _STARTED,
        "publisher": "fhir-adapter",
        "kind": "instance",
        "software": {"name": "fhir-adapter", "version": __version__},
        "implementation": {"description": "fhir-adapter gateway (ResearchStudy, "
                           "ResearchSubject, AdverseEvent and what they reference)",
                           "url": base},
        "fhirVersion": FHIR_RELEASE[version],
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "FHIR REST over a SQLite/PostgreSQL store. JSON only. R4 at "
                             "/fhir, R5 at /fhir/R5 or with Accept: application/fhir+json; "
                             "fhirVersion=5.0.",
            "resource": resources,
            "searchParam": [HAS],
            "compartment": [COMPARTMENT],
            "interaction": [{"code": "transaction"}, {"code": "batch"},
                            {"code": "history-system"}],
            "operation": [{"name": "ingest", "definition": OWN_OPS + "ingest"},
                          {"name": "export", "definition": BULK_EXPORT}],
        }],
    }
    if secured:
        statement["rest"][0]["security"] = _security(base)  # type: ignore[index]
    return dumps(statement)


@bp.get("/metadata")
def metadata() -> Response:
    c = ctx()
    return fhir_response(capability_statement(c.version, c.base, auth_enabled(current_app)),
                         200, c.mime, c.version)
