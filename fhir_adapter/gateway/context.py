"""Per-request facts every endpoint needs: the store, the FHIR version spoken, the public base
URL for links, the response media type and the limits. Built once per request on `flask.g`."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app, g, request
from werkzeug.wrappers import Request

from ..errors import BadRequest
from ..store.base import Store
from ..store.searchparams import RESOURCE_TYPES
from ..validation import FhirVersion
from .negotiation import body_version, negotiate

# The types served: those the store indexes (the three trial resources and what they
# reference); ConceptMaps (mappings/), our extensions' StructureDefinitions and our
# CodeSystems and the ValueSets of the ConceptMaps are read-only (gateway/terminology.py).
READ_ONLY_TYPES = ("ConceptMap", "StructureDefinition", "CodeSystem", "ValueSet")
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


# (scheme, Host, server) -> public base URL: building werkzeug's host_url (quoting, IRI
# decoding) is a large share of a read's own time. Bounded: the Host header is the client's.
_BASES: dict[tuple[Any, ...], str] = {}


def host_base(environ: dict[str, Any]) -> str:
    """The URL of /fhir on the host this request was sent to (werkzeug's host_url)."""
    key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"),
           environ.get("SERVER_NAME"), environ.get("SERVER_PORT"))
    found = _BASES.get(key)
    if found is None:
        if len(_BASES) >= 256:
            _BASES.clear()
        host_url = Request(environ, populate_request=False).host_url
        found = _BASES[key] = host_url.rstrip("/") + "/fhir"
    return found


def public_base(conf: dict[str, Any] | None = None, environ: dict[str, Any] | None = None
                ) -> str:
    """The public URL of /fhir: configured, or else derived from the request's host."""
    configured = (conf or settings()).get("PUBLIC_BASE_URL")
    if configured:
        return str(configured).rstrip("/")
    return host_base(request.environ if environ is None else environ)


# On SQLite an answer is CPU work under the GIL (pages come from memory), but sqlite3 lets
# the GIL go at every row. Threads answering reads at once (gunicorn gthread) then hand it
# back and forth: on a busy machine some runs of a 20-match search took ~55 context switches
# a request (~6 normally) and twice the CPU; answered one at a time, the worst took ~15.
# PostgreSQL's network round trips are worth overlapping: no lock there.
_SERIAL: dict[int, tuple[Store, Any]] = {}  # id -> (the store, kept alive: ids stay unique)


def serialised(store: Store) -> contextlib.AbstractContextManager[Any]:
    """The lock reads and searches of `store` take (a no-op except on SQLite)."""
    found = _SERIAL.get(id(store))
    if found is None or found[0] is not store:
        engine = getattr(store, "engine", None)
        if len(_SERIAL) >= 64:  # bounded: tests make many apps; a server has one store
            _SERIAL.clear()
        found = _SERIAL[id(store)] = (store, threading.Lock()
                                      if getattr(engine, "name", "") == "sqlite"
                                      else contextlib.nullcontext())
    return found[1]


def _path_release() -> FhirVersion | None:
    # The FHIR blueprint is mounted as "fhir" (/fhir), "fhir_R4" and "fhir_R5" (aliases).
    top = request.blueprints[-1] if request.blueprints else ""
    if top.endswith("_R5"):
        return "R5"
    if top.endswith("_R4"):
        return "R4"
    return None


def make_ctx(store: Store, conf: dict[str, Any], environ: dict[str, Any], mime: str,
             released: FhirVersion | None, *stated_versions: FhirVersion | None) -> Ctx:
    """The context of a request to /fhir[/<released>] whose media types state
    `stated_versions` (Accept, Content-Type): the one place that decides version and base,
    for Flask's `ctx()` and the fast path alike."""
    stated = {v for v in stated_versions if v}
    if len(stated) > 1:
        raise BadRequest("Accept and Content-Type ask for different fhirVersion values")
    if released and stated and stated != {released}:
        raise BadRequest(f"this endpoint serves FHIR {released}; the request asks for "
                         f"{stated.pop()}")
    version: FhirVersion = released or (stated.pop() if stated else "R4")
    base = public_base(conf, environ) + (f"/{released}" if released else "")
    return Ctx(store, version, base, mime, int(conf["MAX_COUNT"]), int(conf["DEFAULT_COUNT"]))


def ctx() -> Ctx:
    """This request's context (406/415/400 when its media types or versions cannot be met)."""
    if "fhir_ctx" in g:
        return g.fhir_ctx
    negotiated = negotiate(request)
    g.fhir_ctx = make_ctx(current_app.extensions["fhir_store"], settings(), request.environ,
                          negotiated.mime, _path_release(), negotiated.version,
                          body_version(request))
    return g.fhir_ctx


def for_type(c: Ctx, resource_type: str) -> Ctx:
    """The context whose store holds `resource_type`: conformance resources live in their own."""
    if resource_type in READ_ONLY_TYPES:
        from .terminology import map_store

        return replace(c, store=map_store(current_app))
    return c
