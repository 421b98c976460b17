"""The ValueSets behind our ConceptMaps, generated from them: each map implies the set of codes
it maps from (source) and the set it maps to (target).

Generated, not kept as files beside the maps: a ValueSet written by hand would repeat the
map's codes and drift from it when a row is added (or a site overrides a map through
FHIR_ADAPTER_MAPPINGS); generated, it is always exactly what the map covers.

Where a map's `sourceUri`/`targetUri` is a ValueSet url of ours (`.../ValueSet/enrollment-status`)
that url names the ValueSet, the union of every map that names it. Where it is somebody else's
(an HL7 ValueSet, an NCIt codelist), we do not claim it: the set gets our own url,
`.../ValueSet/<map id>-source` or `-target`, since the map covers only part of what the other
one may hold. The gateway serves them (read-only, `$expand`) and search expands them for
`:in` / `:not-in`.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from . import conceptmaps

BASE = "https://fhir-adapter.dev/fhir/ValueSet/"
_NO_TARGET = ("unmatched", "disjoint")


class UnknownValueSet(KeyError):
    """A ValueSet url or id that none of ours has."""

    def __str__(self) -> str:
        return self.args[0]


def _url(cm: dict[str, Any], side: str) -> str:
    stated = cm.get(f"{side}Uri") or cm.get(f"{side}Canonical") or ""
    return stated if stated.startswith(BASE) else f"{BASE}{cm['id']}-{side}"


def _codes(cm: dict[str, Any], side: str) -> list[tuple[str, str, str | None]]:
    """(system, code, display) of one side of a map, in file order."""
    out = []
    for group in cm.get("group", []):
        for element in group.get("element", []):
            if side == "source":
                out.append((group["source"], element["code"], element.get("display")))
                continue
            out += [(group["target"], t["code"], t.get("display"))
                    for t in element.get("target", [])
                    if t.get("code") and t.get("equivalence") not in _NO_TARGET]
    return out


def _value_set(url: str, side: str, maps: list[str],
               concepts: dict[tuple[str, str], str | None]) -> dict[str, Any]:
    by_system: dict[str, list[dict[str, str]]] = {}
    for (system, code), shown in concepts.items():
        by_system.setdefault(system, []).append(
            {"code": code, **({"display": shown} if shown else {})})
    vid = url.removeprefix(BASE)
    return {
        "resourceType": "ValueSet", "id": vid, "url": url, "version": "1.0.0",
        "name": "".join(p.capitalize() for p in vid.split("-")), "status": "active",
        "experimental": False, "publisher": "fhir-adapter",
        "description": f"The codes ConceptMap {', '.join(maps)} maps "
                       f"{'from' if side == 'source' else 'to'} (generated from the map).",
        "compose": {"include": [{"system": s, "concept": c} for s, c in by_system.items()]},
    }


@cache
def value_sets() -> dict[str, dict[str, Any]]:
    """Every ValueSet implied by the ConceptMaps, by url."""
    found: dict[str, tuple[str, list[str], dict[tuple[str, str], str | None]]] = {}
    for map_id, cm in sorted(conceptmaps.all_maps().items()):
        for side in ("source", "target"):
            codes = _codes(cm, side)
            if not codes:  # a map whose every row is unmatched implies no target set
                continue
            _, maps, concepts = found.setdefault(_url(cm, side), (side, [], {}))
            maps.append(map_id)
            for system, code, shown in codes:
                concepts.setdefault((system, code), shown)
    return {url: _value_set(url, *found[url]) for url in sorted(found)}


def get(reference: str) -> dict[str, Any]:
    """A ValueSet by canonical url (a `|version` suffix must be ours), `ValueSet/<id>` or id;
    raises UnknownValueSet."""
    url, _, version = reference.partition("|")
    sets = value_sets()
    if url.startswith("ValueSet/"):
        url = BASE + url.removeprefix("ValueSet/")
    elif "/" not in url and ":" not in url:
        url = BASE + url
    found = sets.get(url)
    if found is None or version not in ("", found["version"]):
        raise UnknownValueSet(f"unknown ValueSet {reference!r}: this server knows the "
                              f"ValueSets of its ConceptMaps ({BASE}...)")
    return found


def expand(reference: str) -> list[tuple[str, str, str | None]]:
    """(system, code, display) of every code in a ValueSet; raises UnknownValueSet."""
    return [(inc["system"], c["code"], c.get("display"))
            for inc in get(reference)["compose"]["include"] for c in inc["concept"]]
