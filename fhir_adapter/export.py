"""Bulk export: the stored resources, or those of one study, to NDJSON files, one per resource
type named `<Type>.ndjson` (the layout of FHIR Bulk Data output), each line the stored bytes
that a read serves. The files appear together once the export has finished: they are written
beside their final names and renamed at the end, so a failed export leaves the directory as
it was."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import ids
from .errors import Gone, InputError, NotFound
from .store.base import Store, Stored
from .store.scope import reference_texts, targets
from .validation import FhirVersion

PARTIAL = ".partial"
BUFFER = 1 << 20  # bytes per write(2): the default 8 KiB made one call per ~4 resources
TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
OWN_LIMIT = 10_000  # resources the study's own references may reach (sites, groups...)


@dataclass
class ExportSummary:
    """Resources written per file, by file name."""

    counts: dict[Path, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def study_id(store: Store, key: str) -> str:
    """The id of the ResearchStudy `key` names: its id, or the NCT id / sponsor study id
    every mapping derives the id from (ids.study_resource_id): a store may hold a study's
    subjects or events without its protocol, and they can still be exported."""
    try:
        derived = ids.study_resource_id(key)
    except ValueError:  # blank: no derived id
        return key
    for rid in (key, derived):
        try:
            store.read("ResearchStudy", rid)
            return rid
        except (NotFound, Gone):
            continue
    return derived


def own_references(store: Store, study: str, version: FhirVersion) -> set[tuple[str, str]]:
    """(type, id) of the study and of what it references, followed on through the stored
    resources it reaches (R5: the study -> PractitionerRole -> Practitioner)."""
    seen: set[tuple[str, str]] = set()
    todo = [("ResearchStudy", study)]
    while todo and len(seen) < OWN_LIMIT:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        try:
            stored = store.read(*key)
        except (NotFound, Gone):
            continue
        # Not on through a Group: the cohort's members are the subjects' Patients, which the
        # subjects bring (following 100k members here would read them one by one).
        if version in stored.body and key[0] != "Group":
            todo.extend(targets(set(reference_texts(stored.json(version)))))
    return seen


def _unknown(store: Store, rid: str, version: FhirVersion, own: set[tuple[str, str]]) -> bool:
    """Whether nothing at all is stored of the study (an export narrowed by type or time
    that found nothing is not that): asked only when the export wrote nothing."""
    everything = store.iter_study(rid, version, own)
    try:
        return next(everything, None) is None
    finally:
        everything.close()  # type: ignore[attr-defined]


class BadTypeName(ValueError):
    """A --type / _type value that is not a resource type name (not a file name either)."""


def export_ndjson(store: Store, directory: Path, version: FhirVersion, *,
                  types: Sequence[str] | None = None, study: str | None = None,
                  since: str | None = None, overwrite: bool = False,
                  source: Iterator[Stored] | None = None) -> ExportSummary:
    """Write every current resource in `version` (of `types`, else of every type; of the
    study `study`, see store/scope.py; updated at or after `since`, a FHIR instant or date)
    to `directory`/<Type>.ndjson. Existing files of those types are an error unless
    `overwrite`, which also removes those that this export leaves empty (so the directory
    holds one export, not a mix). `source`: write these resources instead (a Patient or
    Group export: pipeline/compartment.py), already narrowed by type and time."""
    if bad := [t for t in types or () if not TYPE_NAME.fullmatch(t)]:
        raise BadTypeName(f"not a resource type name: {bad[0]!r}")
    if types:
        existing = [p for p in (directory / f"{t}.ndjson" for t in types) if p.exists()]
    else:  # glob of a missing directory: nothing
        existing = [p for p in directory.glob("*.ndjson") if TYPE_NAME.fullmatch(p.stem)]
    if existing and not overwrite:
        raise InputError(str(existing[0]), "exists already (--overwrite replaces the files "
                                           "of an earlier export)")
    if source is not None:
        found = source
    elif study is not None:
        rid = study_id(store, study)
        own = own_references(store, rid, version)
        found = store.iter_study(rid, version, own, types or None, since)
    else:
        found = store.iter_all(types or None, version=version, since=since)
    counts: dict[str, int] = {}
    files: dict[str, IO[bytes]] = {}  # type -> its open partial file (a type may recur)
    try:
        for stored in found:
            rtype = stored.resource_type
            out = files.get(rtype)
            if out is None:
                directory.mkdir(parents=True, exist_ok=True)
                out = files[rtype] = open(  # noqa: SIM115 (closed below)
                    directory / f"{rtype}.ndjson{PARTIAL}", "wb", buffering=BUFFER)
                counts[rtype] = 0
            out.write(stored.json(version) + b"\n")
            counts[rtype] += 1
    except BaseException:
        for out in files.values():
            out.close()
            Path(out.name).unlink(missing_ok=True)
        raise
    for out in files.values():
        out.close()
    if source is None and study is not None and not counts and _unknown(store, rid, version, own):
        raise NotFound(f"no stored resources of study {study!r} in {version}")
    summary = ExportSummary({directory / f"{t}.ndjson": counts[t] for t in sorted(counts)})
    for path in summary.counts:
        os.replace(str(path) + PARTIAL, path)
    for path in existing:
        if path not in summary.counts:
            path.unlink()
    return summary
