"""Keeping each study's cohort Group (mapping/cohort.py) in step with its stored subjects:
after a load the loader rebuilds the Group of every study whose ResearchStudy or
ResearchSubjects that load wrote. Written like any resource: a Group that did not change
keeps its version. (Subjects written or deleted over REST do not rebuild it: load them, or
load the study again.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..errors import Gone, InvalidResource, NotFound
from ..fhirversion import FhirVersion
from ..mapping.cohort import cohort_group
from ..store.base import SearchQuery, Store
from ..store.values import split_reference
from ..validation import validate

PAGE = 1000


def _subjects(store: Store, study_id: str, version: FhirVersion) -> Iterator[dict[str, Any]]:
    """Every current ResearchSubject of the study, in `version`."""
    offset = 0
    while True:
        page = store.search(SearchQuery("ResearchSubject", version,
                                        [("study", f"ResearchStudy/{study_id}")],
                                        count=PAGE, offset=offset, total="none"))
        for stored in page.matches:
            yield json.loads(stored.json(version))
        if len(page.matches) < PAGE:
            return
        offset += PAGE


def touched_studies(store: Store, since: str) -> set[str]:
    """Ids of the studies whose ResearchStudy or ResearchSubjects were written at or after
    `since` (a FHIR instant)."""
    found: set[str] = set()
    for stored in store.iter_all(["ResearchStudy", "ResearchSubject"], since=since):
        version: FhirVersion = "R4" if "R4" in stored.body else "R5"
        data = json.loads(stored.json(version))
        if stored.resource_type == "ResearchStudy":
            if not data.get("partOf"):
                found.add(stored.id)
            continue
        rtype, rid = split_reference((data.get("study") or {}).get("reference", ""))
        if rtype == "ResearchStudy" and rid:
            found.add(rid)
    return found


def refresh_cohort(store: Store, study_id: str) -> str | None:
    """Rebuild the study's cohort Group from its stored subjects; the write's outcome
    (created | updated | unchanged), or None when the study itself is not stored."""
    try:
        study = store.read("ResearchStudy", study_id)
    except (NotFound, Gone):
        return None  # its Group would name a study that is not there: made when it comes
    groups: dict[str, dict[str, Any]] = {}
    for version in ("R4", "R5"):
        if version in study.body:
            title = json.loads(study.json(version)).get("title")  # type: ignore[arg-type]
            groups[version] = cohort_group(study_id, title,
                                           _subjects(store, study_id, version),  # type: ignore[arg-type]
                                           version)  # type: ignore[arg-type]
    for version, group in groups.items():
        # The Group's shape repeats from one rebuild to the next: its model is checked once
        # per shape (a 5,000-member Group took 3 s through the full model), the schema always.
        if issues := validate(group, version, model="per-shape"):  # type: ignore[arg-type]
            raise InvalidResource(f"cohort Group of ResearchStudy/{study_id} is invalid",
                                  issues)
    return store.update(groups).outcome


def refresh_cohorts(store: Store, since: str) -> dict[str, int]:
    """Rebuild the cohorts of the studies written since `since`; outcomes counted."""
    counts: dict[str, int] = {}
    for study_id in sorted(touched_studies(store, since)):
        outcome = refresh_cohort(store, study_id)
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts
