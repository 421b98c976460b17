"""Keeping each ResearchStudy's links to its analysis-population Groups (mapping/population.py)
true whichever is loaded first: the populations come from an enrollment load (SUPPDM), the
ResearchStudy from a study load.

- A study load is given the population Groups already stored (`stored_links`) and writes each
  ResearchStudy with its links: a study re-loaded over its populations stays unchanged.
- After a study or enrollment load, `refresh_populations` rewrites the ResearchStudy of every
  study whose ResearchStudy or population Groups that load wrote, when its links differ (a
  ResearchStudy that did not change keeps its version). A population loaded before its study
  waits, unreferenced, until the study comes."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from ..errors import Gone, InvalidResource, NotFound
from ..fhirversion import FhirVersion
from ..mapping.population import POPULATION_SYSTEM, link_populations, study_of
from ..store.base import SearchQuery, Store
from ..validation import validate

PAGE = 1000


def _population_groups(store: Store, since: str | None = None) -> list[dict[str, Any]]:
    """Every current analysis-population Group (R4 view), or those written since `since`."""
    if since is not None:
        out = []
        for stored in store.iter_all(["Group"], since=since):
            version: FhirVersion = "R4" if "R4" in stored.body else "R5"
            out.append(json.loads(stored.json(version)))
        return [g for g in out if study_of(g)]
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = store.search(SearchQuery("Group", "R4", [("code", f"{POPULATION_SYSTEM}|")],
                                        count=PAGE, offset=offset, total="none"))
        found += [json.loads(m.json("R4")) for m in page.matches]
        if len(page.matches) < PAGE:
            return found
        offset += PAGE


def stored_links(store: Store) -> dict[str, list[str]]:
    """ResearchStudy id -> the ids of its stored analysis-population Groups."""
    links: dict[str, list[str]] = defaultdict(list)
    for group in _population_groups(store):
        study = study_of(group)
        if study:
            links[study].append(group["id"])
    return dict(links)


def _touched(store: Store, since: str) -> set[str]:
    """Studies whose top-level ResearchStudy or population Groups were written since."""
    found = {g for g in map(study_of, _population_groups(store, since)) if g}
    for stored in store.iter_all(["ResearchStudy"], since=since):
        version: FhirVersion = "R4" if "R4" in stored.body else "R5"
        if not json.loads(stored.json(version)).get("partOf"):
            found.add(stored.id)
    return found


def refresh_population_links(store: Store, study_id: str, group_ids: list[str]) -> str | None:
    """Write the ResearchStudy with exactly these population links; the outcome (updated |
    unchanged), or None when the study is not stored."""
    try:
        study = store.read("ResearchStudy", study_id)
    except (NotFound, Gone):
        return None
    linked: dict[str, dict[str, Any]] = {}
    changed = False
    for version in ("R4", "R5"):
        if version in study.body:
            current = json.loads(study.json(version))  # type: ignore[arg-type]
            linked[version] = link_populations(current, group_ids)
            changed = changed or linked[version] is not current
    if not changed:
        return "unchanged"
    for version in linked:
        if issues := validate(linked[version], version):  # type: ignore[arg-type]
                raise InvalidResource(f"ResearchStudy/{study_id} with its analysis "
                                      "populations is invalid", issues)
    return store.update(linked).outcome


def refresh_populations(store: Store, since: str) -> dict[str, int]:
    """Bring the population links of every study touched since `since` in step; outcomes
    counted."""
    touched = _touched(store, since)
    if not touched:
        return {}
    links = stored_links(store)
    counts: dict[str, int] = {}
    for study_id in sorted(touched):
        outcome = refresh_population_links(store, study_id, links.get(study_id, []))
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts
