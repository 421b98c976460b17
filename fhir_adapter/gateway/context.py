"""Per-request facts every endpoint needs: the store, the FHIR version spoken, the public base
URL for links, the response media type and the limits. Built once per request on `flask.g`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from flask import current_app, g, request

from ..errors import BadRequest
from ..store.base import Store
from ..store.searchparams import RESOURCE_TYPES
from ..validation import FhirVersion
from .negotiation import body_version, negotiate

# The types served: those the store indexes (the three trial resources and what they
# reference); ConceptMaps (mappings/), our extensions' StructureDefinitions and our
# CodeSystems are read-only (gateway/terminology.py).
READ_ONLY_TYPES = ("ConceptMap", "StructureDefinition", "CodeSystem")
STORED_TYPES = tuple(t for t in RESOURCE_TYPES if t not in READ_ONLY_TYPES)


@dataclass(frozen=True)
class Ctx:
    """What one request runs with."""

    store: Store
    version: FhirVersion
    base: str  # absolute FHIR base of this request's links, e.g. http://h:8080/fhir/R5
    mime: str
    max_count: int
    default_count: int


def settings() -> dict[str, Any]:
    """The app's FHIR_ADAPTER settings."""
    return current_app.config["FHIR_ADAPTER"]


# (scheme, host) -> public base URL: building request.host_url (quoting, IRI decoding) is a
# large share of a read's own time. Bounded: the Host header is the client's to choose.
_BASES: dict[tuple[str, str], str] = {}


def public_base() -> str:
    """The public URL of /fhir: configured, or else derived from the request's host."""
    configured = settings().get("PUBLIC_BASE_URL")
    if configured:
        return str(configured).rstrip("/")
    key = (request.scheme, request.host)
    found = _BASES.get(key)
    if found is None:
        if len(_BASES) >= 256:
            _BASES.clear()
        found = _BASES[key] = request.host_url.rstrip("/") + "/fhir"
    return found


def _path_release() -> FhirVersion | None:
    # The FHIR blueprint is mounted as "fhir" (/fhir), "fhir_R4" and "fhir_R5" (aliases).
    top = request.blueprints[-1] if request.blueprints else ""
    if top.endswith("_R5"):
        return "R5"
    if top.endswith("_R4"):
        return "R4"
    return None


def ctx() -> Ctx:
    """This request's context (406/415/400 when its media types or versions cannot be met)."""
    if "fhir_ctx" in g:
        return g.fhir_ctx
    negotiated = negotiate(request)
    released = _path_release()
    stated = {v for v in (negotiated.version, body_version(request)) if v}
    if len(stated) > 1:
        raise BadRequest("Accept and Content-Type ask for different fhirVersion values")
    if released and stated and stated != {released}:
        raise BadRequest(f"this endpoint serves FHIR {released}; the request asks for "
                         f"{stated.pop()}")
    version: FhirVersion = released or (stated.pop() if stated else "R4")
    base = public_base() + (f"/{released}" if released else "")
    conf = settings()
    g.fhir_ctx = Ctx(current_app.extensions["fhir_store"], version, base, negotiated.mime,
                     int(conf["MAX_COUNT"]), int(conf["DEFAULT_COUNT"]))
    return g.fhir_ctx


def for_type(c: Ctx, resource_type: str) -> Ctx:
    """The context whose store holds `resource_type`: conformance resources live in their own."""
    if resource_type in READ_ONLY_TYPES:
        from .terminology import map_store

        return replace(c, store=map_store(current_app))
    return c
