"""`fhir-adapter push`: the stored resources (all, one study's, some types, those changed
since an instant) written to another FHIR server, idempotently and resumably.

1. A first pass over the selection counts it and learns the order to write in
   (ordering.py): referenced types first, so every reference resolves as it arrives.
2. Type by type, in chunks: the target's current copies are read back (`_id` search) and
   compared without the server-set meta; only what differs is written, as one transaction
   (or batch) of PUTs by our deterministic ids. A second push of unchanged data therefore
   writes nothing and makes no new versions, on any server.
3. Each answered chunk is journalled (checkpoint.py): a push that was stopped resumes.

EHR mode (`patients`, a crosswalk subject id -> the hospital's patient identifier): our
pseudonymised Patients are never pushed; every reference to one is replaced by the target's
own Patient, found by `Patient?identifier=system|value` there."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import Gone, InputError, NotFound
from ...store.base import Store, Stored
from .checkpoint import Checkpoint
from .ordering import Plan, parents_first
from .target import Target, comparable

OUTCOMES = ("created", "updated", "unchanged", "failed")


@dataclass
class Selection:
    """What to push: a study (id, NCT id or sponsor study id) or everything; types; since."""

    version: str = "R4"
    study: str | None = None
    types: tuple[str, ...] = ()
    since: str | None = None

    def identity(self) -> dict[str, Any]:
        return {"version": self.version, "study": self.study, "types": sorted(self.types),
                "since": self.since}


@dataclass
class PushSummary:
    """Outcomes per type, the failures with their reasons, and whether it resumed."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resumed: bool = False

    def add(self, rtype: str, outcome: str, times: int = 1) -> None:
        self.counts.setdefault(rtype, Counter())[outcome] += times

    def total(self, outcome: str) -> int:
        return sum(c[outcome] for c in self.counts.values())

    def lines(self) -> list[str]:
        """One line per type, then the totals."""
        out = [f"{t}: " + ", ".join(f"{c[o]} {o}" for o in OUTCOMES)
               for t, c in sorted(self.counts.items())]
        return out + ["total: " + ", ".join(f"{self.total(o)} {o}" for o in OUTCOMES)]


class Meter:
    """`push: done/total resources (rate/s)` on stderr, at most ~4 times a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.started = self.shown = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self.shown >= 0.25 or self.done >= self.total):
            self.shown = now
            rate = self.done / max(now - self.started, 1e-6)
            sys.stderr.write(f"\rpush: {self.done}/{self.total} resources ({rate:.1f}/s)")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


class PatientLinks:
    """EHR mode: our Patient id -> the target's Patient id, through the crosswalk CSV
    (columns subject_id, system, value) and a search on the target."""

    def __init__(self, path: Path, store: Store, target: Target) -> None:
        self.store, self.target = store, target
        self.by_subject: dict[str, tuple[str, str]] = {}
        self.resolved: dict[str, str | Exception] = {}
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"subject_id", "system", "value"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(str(path), f"needs the columns subject_id, system, value "
                                            f"(missing: {', '.join(sorted(missing))})")
            for number, row in enumerate(reader, start=2):
                subject, system, value = (row[k].strip() if row[k] else ""
                                          for k in ("subject_id", "system", "value"))
                if not (subject and system and value):
                    raise InputError(str(path), "subject_id, system and value are all "
                                                "needed", row=number)
                self.by_subject[subject] = (system, value)

    def target_id(self, patient_id: str) -> str:
        """The target's id of the hospital patient behind our Patient `patient_id`."""
        if patient_id not in self.resolved:
            try:
                self.resolved[patient_id] = self._resolve(patient_id)
            except LookupError as exc:
                self.resolved[patient_id] = exc
        found = self.resolved[patient_id]
        if isinstance(found, Exception):
            raise found
        return found

    def _resolve(self, patient_id: str) -> str:
        try:
            ours = json.loads(self.store.read("Patient", patient_id).json(self.target.version))
        except (NotFound, Gone, KeyError) as exc:
            raise LookupError(f"Patient/{patient_id} is not stored here") from exc
        subjects = [i.get("value") for i in ours.get("identifier") or []]
        link = next((self.by_subject[s] for s in subjects if s in self.by_subject), None)
        if link is None:
            raise LookupError(f"subject {subjects[0] if subjects else patient_id} is not in "
                              "the --link-patients crosswalk")
        rid, matches = self.target.search_one("Patient", identifier=f"{link[0]}|{link[1]}")
        if rid is None:
            raise LookupError(f"the target has {matches} Patients with identifier "
                              f"{link[0]}|{link[1]} (needs exactly one)")
        return rid

    def relink(self, value: Any) -> Any:
        """`value` with every Patient/<ours> reference made the target's."""
        if isinstance(value, dict):
            out = {k: self.relink(v) for k, v in value.items()}
            ref = out.get("reference")
            if isinstance(ref, str) and ref.startswith("Patient/"):
                out["reference"] = "Patient/" + self.target_id(ref.removeprefix("Patient/"))
            return out
        if isinstance(value, list):
            return [self.relink(v) for v in value]
        return value


def _stream(store: Store, selection: Selection, types: list[str] | None) -> Iterator[Stored]:
    from ...export import own_references, study_id

    version: Any = selection.version
    if selection.study is None:
        return store.iter_all(types, version=version, since=selection.since)
    rid = study_id(store, selection.study)
    own = own_references(store, rid, version)
    return store.iter_study(rid, version, own, types, selection.since)


def push(store: Store, target: Target, selection: Selection, checkpoint: Checkpoint, *,
         chunk: int = 100, dry_run: bool = False, links: PatientLinks | None = None,
         progress: bool = False, warn: Callable[[str], None] | None = None) -> PushSummary:
    """Push the selection to `target` (its mode set by Target.capabilities)."""
    summary = PushSummary(resumed=checkpoint.resumed)
    for rtype, counts in checkpoint.counts.items():
        for outcome, times in counts.items():
            summary.add(rtype, outcome, times)
    plan = Plan()
    skipped_patients = 0
    for stored in _stream(store, selection, list(selection.types) or None):
        if links is not None and stored.resource_type == "Patient":
            skipped_patients += 1
            continue
        plan.add(stored.resource_type, stored.id, stored.json(selection.version))  # type: ignore[arg-type]
    if skipped_patients:
        summary.warnings.append(f"{skipped_patients} Patient(s) not pushed (--link-patients: "
                                "references go to the hospital's own Patients)")
    if selection.study is not None and not plan.total and not checkpoint.done:
        summary.warnings.append(f"nothing stored for study {selection.study!r}"
                                + (" in the selected types or time" if selection.types
                                   or selection.since else ""))
    order, cyclic = plan.type_order()
    if cyclic:
        summary.warnings.append(f"types referencing each other ({', '.join(cyclic)}): their "
                                "references resolve once the push is complete")
    meter = Meter(plan.total, progress)
    meter.advance(sum(1 for k in checkpoint.done if k in plan.keys))
    for rtype in order:
        items: Iterator[tuple[str, bytes]] = (
            (s.id, s.json(selection.version))  # type: ignore[arg-type]
            for s in _stream(store, selection, [rtype]) if s.resource_type == rtype)
        if rtype in plan.self_referencing:
            items = iter(parents_first(items, rtype))
        batch: list[tuple[str, bytes]] = []
        for rid, data in items:
            if (rtype, rid) in checkpoint.done:
                continue
            batch.append((rid, data))
            if len(batch) >= chunk:
                _chunk(target, rtype, batch, checkpoint, summary, dry_run, links)
                meter.advance(len(batch))
                batch = []
        if batch:
            _chunk(target, rtype, batch, checkpoint, summary, dry_run, links)
            meter.advance(len(batch))
    meter.close()
    return summary


def _chunk(target: Target, rtype: str, batch: list[tuple[str, bytes]], checkpoint: Checkpoint,
           summary: PushSummary, dry_run: bool, links: PatientLinks | None) -> None:
    """Compare one chunk with the target's copies and write what differs."""
    resources: list[dict[str, Any]] = []
    for rid, data in batch:
        resource = json.loads(data)
        if links is not None:
            try:
                resource = links.relink(resource)
            except LookupError as exc:
                summary.add(rtype, "failed")
                summary.failures.append(f"{rtype}/{rid}: {exc}")
                continue
        resources.append(resource)
    if not resources:
        return
    theirs = target.existing(rtype, [r["id"] for r in resources])
    changed, done = [], []
    for resource in resources:
        current = theirs.get(resource["id"])
        if current is not None and comparable(current) == comparable(resource):
            done.append((rtype, resource["id"], "unchanged"))
        else:
            changed.append(resource)
    if dry_run:
        for resource in changed:
            outcome = "updated" if resource["id"] in theirs else "created"
            summary.add(rtype, outcome)
        for _, _, outcome in done:
            summary.add(rtype, outcome)
        return
    if changed:
        for resource, result in zip(changed, target.write(changed), strict=True):
            if result.outcome == "failed":
                summary.failures.append(f"{rtype}/{resource['id']}: {result.message}")
                summary.add(rtype, "failed")
            else:  # by what was there before: a retried write whose first answer was
                # lost is answered 200 for what that first attempt created
                done.append((rtype, resource["id"],
                             "updated" if resource["id"] in theirs else "created"))
    for _, _, outcome in done:
        summary.add(rtype, outcome)
    checkpoint.record(done)
