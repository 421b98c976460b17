"""Conformance resources, read-only: the ConceptMaps of mappings/ (fhir_adapter.conceptmaps),
the ValueSets they imply (fhir_adapter.valuesets; `$expand` in operations.py), the
StructureDefinitions of our extensions (fhir_adapter.extension_defs, one per FHIR version)
and the CodeSystems we publish (mapping.own_terms); not the user's data. They are loaded into
a private, per-process SQLite store on first use, so read, search (every official search
parameter of their types, e.g. `url`), paging and `_summary` work exactly as for the other
types, while the database the gateway serves never holds them and clients cannot change them
(writes answer 405)."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
from functools import cache

from flask import Flask

from .. import conceptmaps, extension_defs, valuesets
from ..mapping import own_terms
from ..store import Store, open_store
from ..validation import VERSIONS, validate

log = logging.getLogger("fhir_adapter.gateway")
_LOCK = threading.Lock()


@cache
def _versions_of(map_id: str) -> tuple[str, ...]:
    # Served in each version it is valid in as written (ours are R4-shaped).
    return tuple(v for v in VERSIONS if not validate(conceptmaps.all_maps()[map_id], v))


def served_versions() -> frozenset[str]:
    """The FHIR versions in which at least one ConceptMap is served."""
    return frozenset(v for map_id in conceptmaps.all_maps() for v in _versions_of(map_id))


def _build() -> Store:
    folder = tempfile.mkdtemp(prefix="fhir-adapter-conceptmaps-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    store = open_store(f"sqlite:///{folder}/conceptmaps.db")
    with store.transaction() as tx:
        for map_id, cm in sorted(conceptmaps.all_maps().items()):
            versions = _versions_of(map_id)
            if not versions:
                log.warning("ConceptMap %s is valid in no FHIR version: not served", map_id)
                continue
            tx.update({v: cm for v in versions})
        for url in extension_defs.specs():
            tx.update({v: extension_defs.structure_definition(url, v) for v in VERSIONS})
        for cs in own_terms.code_systems():
            tx.update({v: cs for v in VERSIONS})
        for vs in valuesets.value_sets().values():  # valid in both versions as written
            tx.update({v: vs for v in VERSIONS})
    return store


def map_store(app: Flask) -> Store:
    """The store of this process's ConceptMaps (built on first call)."""
    store = app.extensions.get("fhir_conceptmaps")
    if store is None:
        with _LOCK:
            store = app.extensions.get("fhir_conceptmaps")
            if store is None:
                store = app.extensions["fhir_conceptmaps"] = _build()
    return store
