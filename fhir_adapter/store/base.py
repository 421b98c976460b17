"""The store contract: what the gateway, the loader and the exporter may ask of a backend.

One implementation (SQLAlchemy Core) serves SQLite and PostgreSQL; this Protocol is what
the rest of the code depends on. A resource is stored once per logical id with one JSON
representation per FHIR version it can be served in (mapped data carries both R4 and R5;
a resource a client wrote carries the version it was written in, plus the other when a
conversion exists). Bytes are canonical and validated at write time; reads serve them as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FhirVersion = Literal["R4", "R5"]


@dataclass(frozen=True)
class Stored:
    """One version of one resource as stored: its bytes per FHIR version, meta facts."""

    resource_type: str
    id: str
    version_id: int
    last_updated: str  # FHIR instant, UTC, e.g. 2026-11-25T13:00:00.123Z
    deleted: bool
    body: Mapping[str, bytes]  # FHIR version -> canonical JSON bytes (with meta filled in)
    method: str = "PUT"  # POST | PUT | DELETE: for history entries

    def json(self, version: FhirVersion) -> bytes:
        """Bytes in `version`; KeyError when the resource has no such representation."""
        return self.body[version]


@dataclass(frozen=True)
class WriteResult:
    """What a write did: created, updated, or nothing (content unchanged: same version)."""

    stored: Stored
    outcome: Literal["created", "updated", "unchanged"]


@dataclass
class SearchQuery:
    """A parsed FHIR search: parameters as (name[:modifier], value) pairs in request order."""

    resource_type: str
    version: FhirVersion
    params: list[tuple[str, str]] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    sort: list[str] = field(default_factory=list)  # e.g. ["-date", "_id"]
    total: Literal["none", "estimate", "accurate"] = "accurate"
    strict: bool = False  # Prefer: handling=strict -> unknown parameters are errors


@dataclass(frozen=True)
class SearchResult:
    """One page of matches (stable order) and the total when asked for."""

    matches: Sequence[Stored]
    total: int | None
    ignored: Sequence[str] = ()  # parameters ignored under lenient handling


class Store(Protocol):
    """Atomic per call; `transaction()` groups calls into one all-or-nothing unit.

    Writes store representations their callers have validated (validation.validate,
    validation.checked: the store does not judge FHIR), fill in
    id and meta.versionId/lastUpdated, and store canonical bytes (store.canonical.dumps:
    element order and decimal text as given). Parse request bodies with
    store.canonical.loads so decimals keep their text. The indexed search parameters per
    version and type: store.searchparams.search_params(version, type) -> {code: SearchParam
    (code, type, url, description, expression, targets)}.
    """

    def create(self, resources: Mapping[str, dict[str, Any]], *,
               if_none_exist: str | None = None, version: FhirVersion | None = None
               ) -> WriteResult:
        """New resource from its representations {"R4": {...}, "R5": {...}} (same type and
        id in each); the id is the caller's (deterministic) or generated when absent; an id
        that exists already -> errors.Conflict. `if_none_exist` ('identifier=sys|val', in
        the parameter names of `version`, default: the only representation, else R4): one
        match -> WriteResult(that resource, "unchanged"), several -> PreconditionFailed;
        concurrent equal conditional creates write exactly once (serialised in the DB)."""

    def update(self, resources: Mapping[str, dict[str, Any]], *,
               if_match: int | None = None) -> WriteResult:
        """Create-or-update by type and id; unchanged content keeps the version (outcome
        "unchanged", nothing written). `if_match` (the version the client read) is checked
        atomically: a mismatch, a concurrent winner or a missing resource ->
        errors.PreconditionFailed. Updating a deleted resource revives it ("created")."""

    def bulk_upsert(self, resources: Iterable[Mapping[str, dict[str, Any]]]
                    ) -> Iterator[tuple[str, str]]:
        """update() of each {version: resource} in turn, written in batches (the loader):
        (resource type, outcome) per resource as its batch is written; an error raised
        while pulling from the iterable (validation.checked raises InvalidResource) stops
        the writes. Use inside transaction() for all or nothing."""

    def read(self, resource_type: str, id: str) -> Stored:
        """Current version; raises errors.NotFound or errors.Gone (deleted)."""

    def vread(self, resource_type: str, id: str, version_id: int) -> Stored:
        """One version; NotFound (no such version) or Gone (the version is a deletion)."""

    def delete(self, resource_type: str, id: str) -> Stored | None:
        """Tombstone; returns it, or None when there was nothing to delete."""

    def history(self, resource_type: str | None = None, id: str | None = None, *,
                since: str | None = None, at: str | None = None, count: int = 50,
                offset: int = 0) -> list[Stored]:
        """Versions newest first (instance/type/system); deletions have deleted=True and no
        body; `since` is inclusive; `at` keeps the versions current at that instant/date."""

    def search(self, query: SearchQuery) -> SearchResult:
        """Matches carry the bytes of query.version only; resources without a
        representation in that version never match. Unknown parameters are listed in
        `ignored` (strict -> errors.BadRequest); bad values and unsupported modifiers ->
        errors.BadRequest. Result parameters (_count, _sort, _include, ...) are skipped."""

    def transaction(self, bulk: bool = False) -> AbstractContextManager[Store]:
        """A unit of work: every write inside commits together or not at all. `bulk`: the
        unit of a bulk load (the store may write it in a way that pays off for many rows)."""

    def lock(self, key: str) -> None:
        """Inside transaction(): serialise with every other unit locking the same key until
        commit, e.g. f"{type}?{criteria}" around a conditional update's search-then-write."""

    def references_from(self, sources: Sequence[Stored], version: FhirVersion, param: str,
                        target_type: str | None = None, limit: int = 1000) -> list[Stored]:
        """_include: current resources the reference parameter `param` of `sources` points
        at (only `target_type` if given), from the index."""

    def referencing(self, resource_type: str, version: FhirVersion, param: str,
                    targets: Sequence[Stored], limit: int = 1000) -> list[Stored]:
        """_revinclude: current `resource_type` resources whose `param` points at `targets`."""

    def analyze(self, written: int | None = None) -> None:
        """Refresh the planner statistics after a bulk load that wrote `written` resources
        (None: unknown, always refresh)."""

    def iter_all(self, resource_types: Sequence[str] | None = None,
                 version: FhirVersion | None = None, since: str | None = None
                 ) -> Iterator[Stored]:
        """Every current resource (with `version`'s representation only, if given; updated
        at or after `since`, if given), streamed (bulk export)."""

    def iter_study(self, study_id: str, version: FhirVersion, own: set[tuple[str, str]],
                   resource_types: Sequence[str] | None = None, since: str | None = None
                   ) -> Iterator[Stored]:
        """The current resources of one study in `version` (scope.py), type by type."""
