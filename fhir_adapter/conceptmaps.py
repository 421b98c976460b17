"""Code translations as FHIR ConceptMap resources, read from the top-level mappings/ folder.

The maps are data: a site can add or override one by pointing FHIR_ADAPTER_MAPPINGS at a
folder of its own ConceptMap JSON files (same `id` replaces ours).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

CANONICAL_BASE = "https://fhir-adapter.dev/fhir/ConceptMap/"


@dataclass(frozen=True)
class Target:
    """One translation target of a ConceptMap element."""

    code: str | None
    system: str | None
    display: str | None
    equivalence: str
    comment: str | None = None

    def coding(self) -> dict[str, str]:
        """The target as a FHIR Coding (system, code, display)."""
        out = {}
        if self.system:
            out["system"] = self.system
        if self.code:
            out["code"] = self.code
        if self.display:
            out["display"] = self.display
        return out


class UnmappedCode(KeyError):
    """A source code that a ConceptMap has no target for."""

    def __init__(self, map_id: str, code: str) -> None:
        super().__init__(f"{code!r} is not in ConceptMap {map_id}")
        self.map_id, self.code = map_id, code

    def __str__(self) -> str:
        return self.args[0]


def mappings_dirs() -> list[Traversable]:
    """Folders holding ConceptMaps: ours (source checkout or installed), then the site's."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "mappings"
    dirs: list[Traversable]
    if checkout.is_dir() and any(checkout.glob("*.json")):
        dirs = [checkout]
    else:
        # Installed: mappings/ has no __init__.py, so this is a namespace package whose
        # files() is a MultiplexedPath, not a Path: walk it as a Traversable.
        dirs = [resources.files("fhir_adapter.mappings")]
    extra = os.environ.get("FHIR_ADAPTER_MAPPINGS")
    if extra:
        dirs.append(Path(extra))
    return dirs


@cache
def all_maps() -> dict[str, dict[str, Any]]:
    """Every ConceptMap by id, later folders overriding earlier ones."""
    maps: dict[str, dict[str, Any]] = {}
    for folder in mappings_dirs():
        for path in sorted((p for p in folder.iterdir() if p.name.endswith(".json")),
                           key=lambda p: p.name):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("resourceType") != "ConceptMap" or "id" not in data:
                raise ValueError(f"{path}: not a ConceptMap with an id")
            maps[data["id"]] = data
    return maps


def get_map(map_id: str) -> dict[str, Any]:
    """A ConceptMap by id or canonical url."""
    maps = all_maps()
    if map_id.startswith(CANONICAL_BASE):
        map_id = map_id[len(CANONICAL_BASE):]
    if map_id in maps:
        return maps[map_id]
    for cm in maps.values():
        if cm.get("url") == map_id:
            return cm
    raise KeyError(f"no ConceptMap {map_id!r}")


@cache
def _index(map_id: str) -> dict[str, list[Target]]:
    index: dict[str, list[Target]] = {}
    for group in get_map(map_id).get("group", []):
        system = group.get("target")
        for element in group.get("element", []):
            targets = [
                Target(t.get("code"), system if t.get("code") else None, t.get("display"),
                       t.get("equivalence", "equivalent"), t.get("comment"))
                for t in element.get("target", [])
            ]
            index.setdefault(element["code"], []).extend(targets)
    return index


def translate(map_id: str, code: str) -> list[Target]:
    """All targets of `code` (exact source code first, then case-insensitively); [] if none."""
    index = _index(map_id)
    if code in index:
        return index[code]
    folded = {k.casefold(): v for k, v in index.items()}
    return folded.get(code.strip().casefold(), [])


def lookup(map_id: str, code: str) -> Target:
    """The first mapped target of `code`; raises UnmappedCode when there is none."""
    for target in translate(map_id, code):
        if target.code and target.equivalence not in ("unmatched", "disjoint"):
            return target
    raise UnmappedCode(map_id, code)


def source_codes(map_id: str) -> list[str]:
    """Every source code a map covers, in file order."""
    return list(_index(map_id))
