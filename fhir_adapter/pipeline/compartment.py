"""What a Patient-level or Group-level Bulk Data export writes (FHIR Bulk Data IG): the
Patient compartment of the patients (all of them, or a Group's members) and what those
resources reference. Here: the Patients; every resource whose patient reference parameter
(`patient`, `subject`, `individual`: ResearchSubject, AdverseEvent) names one of them; and
the resources those reference, one hop (the study, the event's Medication...). `_type`
limits the types written; `_since` the resources (those updated at or after it);
`_typeFilter` (`Type?search`) keeps, of a type it names, the resources matching any of its
searches. Found through the store's search, so filters mean what they mean over REST."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import parse_qsl

from ..errors import BadRequest, NotFound
from ..fhirversion import FhirVersion
from ..store.base import SearchQuery, Store, Stored
from ..store.reading import since_instant
from ..store.scope import reference_texts, targets
from ..store.searchparams import RESOURCE_TYPES, search_params

PATIENT_PARAMS = ("patient", "subject", "individual")
CHUNK = 100  # ids per search: a URL-sized OR list
PAGE = 1000


@cache
def compartment_params(version: FhirVersion) -> tuple[tuple[str, str], ...]:
    """(type, parameter) through which a resource of our types names its patient."""
    out = []
    for rtype in RESOURCE_TYPES:
        if rtype == "Patient":
            continue
        params = search_params(version, rtype)
        code = next((c for c in PATIENT_PARAMS if c in params and params[c].type == "reference"
                     and "Patient" in params[c].targets), None)
        if code:
            out.append((rtype, code))
    return tuple(out)


@dataclass
class Filters:
    """The `_type` and `_typeFilter` of a kick-off, parsed."""

    types: set[str] | None = None
    by_type: dict[str, list[list[tuple[str, str]]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, types: Sequence[str] | None, type_filters: Sequence[str]) -> Filters:
        """Filters from `_type` names and `_typeFilter` values ('Type?param=value&...')."""
        out = cls(set(types) if types else None)
        for text in type_filters:
            rtype, _, query = text.partition("?")
            if not rtype or not query or rtype not in RESOURCE_TYPES:
                raise BadRequest(f"_typeFilter {text!r} is not 'Type?search' of a served type")
            if out.types is not None and rtype not in out.types:
                raise BadRequest(f"_typeFilter {text!r} names a type _type leaves out")
            params = parse_qsl(query, keep_blank_values=True)
            if bad := [k for k, _ in params if k in ("_count", "_sort", "_include",
                                                     "_revinclude", "_elements", "_summary")]:
                raise BadRequest(f"_typeFilter {text!r}: {bad[0]} is not a filter")
            out.by_type.setdefault(rtype, []).append(params)
        return out

    def wants(self, rtype: str) -> bool:
        return self.types is None or rtype in self.types


def _search(store: Store, rtype: str, version: FhirVersion, params: list[tuple[str, str]]
            ) -> Iterator[Stored]:
    offset = 0
    while True:
        page = store.search(SearchQuery(rtype, version, params, count=PAGE, offset=offset,
                                        sort=["_id"], total="none", strict=True))
        yield from page.matches
        if len(page.matches) < PAGE:
            return
        offset += PAGE


def _matching(store: Store, rtype: str, version: FhirVersion, scope: tuple[str, str],
              filters: Filters) -> Iterator[Stored]:
    """The `rtype` resources in `scope` (one search parameter) that pass the filters."""
    searches = filters.by_type.get(rtype) or [[]]
    seen: set[str] = set()
    for params in searches:
        for stored in _search(store, rtype, version, [scope, *params]):
            if stored.id not in seen:  # several _typeFilters may match one resource
                seen.add(stored.id)
                yield stored


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for first in range(0, len(values), CHUNK):
        yield list(values[first:first + CHUNK])


def compartment(store: Store, version: FhirVersion, patients: Iterable[str],
                filters: Filters, since: str | None = None) -> Iterator[Stored]:
    """The resources of the patients' compartment and what they reference (see above),
    each once, type by type."""
    members = sorted(set(patients))
    after = since_instant(since) if since else ""
    referenced: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()

    def scoped(rtype: str, scope: tuple[str, str]) -> Iterator[Stored]:
        """Those in scope that pass the filters, noting what they reference; only those
        updated since `since` come out (an older one still leads to what it references)."""
        for stored in _matching(store, rtype, version, scope, filters):
            if (rtype, stored.id) in seen:
                continue
            seen.add((rtype, stored.id))
            referenced.update(targets(set(reference_texts(stored.json(version)))))
            if stored.last_updated >= after and filters.wants(rtype):
                yield stored

    for ids in _chunks(members):
        yield from scoped("Patient", ("_id", ",".join(ids)))
    for rtype, code in compartment_params(version):
        for ids in _chunks(members):
            yield from scoped(rtype, (code, ",".join(f"Patient/{i}" for i in ids)))
    member_set = set(members)
    pending = sorted(k for k in referenced - seen if k[0] in RESOURCE_TYPES
                     and filters.wants(k[0]) and (k[0] != "Patient" or k[1] in member_set))
    for rtype in sorted({t for t, _ in pending}):
        for chunk in _chunks([i for t, i in pending if t == rtype]):
            yield from scoped(rtype, ("_id", ",".join(chunk)))


def group_members(store: Store, group_id: str, version: FhirVersion) -> list[str]:
    """The Patient ids among the Group's members (404/410 for no such Group)."""
    import json

    stored = store.read("Group", group_id)
    if version not in stored.body:
        raise NotFound(f"Group/{group_id} has no FHIR {version} representation")
    data = json.loads(stored.json(version))
    out = []
    for member in data.get("member") or []:
        ref = (member.get("entity") or {}).get("reference", "")
        if ref.startswith("Patient/"):
            out.append(ref.removeprefix("Patient/"))
    return out


def all_patients(store: Store, version: FhirVersion) -> Iterator[str]:
    """Every current Patient's id (Patient-level export)."""
    for stored in store.iter_all(["Patient"], version=version):
        yield stored.id

