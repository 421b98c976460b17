"""The order a push writes resources in, so that every reference resolves on the target the
moment it arrives: types ordered so that a type comes after the types it references (seen in
the data, not assumed), and within a type that references itself (a site ResearchStudy's
partOf) parents before children."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ...store.scope import reference_texts, targets

Key = tuple[str, str]


class Plan:
    """What a first pass over the selection learns: resources per type, type -> types it
    references (among those selected), and which types reference themselves."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.edges: dict[str, set[str]] = defaultdict(set)
        self.self_referencing: set[str] = set()
        self.keys: set[Key] = set()
        self._refs: dict[str, set[str]] = defaultdict(set)

    def add(self, rtype: str, rid: str, data: bytes) -> None:
        """Note one selected resource (its stored bytes)."""
        self.counts[rtype] += 1
        self.keys.add((rtype, rid))
        for target_type, _ in targets(set(reference_texts(data))):
            self._refs[rtype].add(target_type)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def type_order(self) -> tuple[list[str], list[str]]:
        """The types in writing order, and those caught in a reference cycle between types
        (written last, in name order: their references may resolve only once all is written)."""
        present = set(self.counts)
        for rtype, refs in self._refs.items():
            for target in refs & present:
                if target == rtype:
                    self.self_referencing.add(rtype)
                else:
                    self.edges[rtype].add(target)
        order: list[str] = []
        waiting = {t: set(self.edges.get(t, ())) for t in present}
        while True:
            ready = sorted(t for t, deps in waiting.items() if not deps)
            if not ready:
                break
            for rtype in ready:
                order.append(rtype)
                del waiting[rtype]
            for deps in waiting.values():
                deps.difference_update(ready)
        cyclic = sorted(waiting)
        return order + cyclic, cyclic


def parents_first(items: Iterable[tuple[str, bytes]], rtype: str) -> list[tuple[str, bytes]]:
    """(id, bytes) of one self-referencing type, each after the resources of that type it
    references; ids in order otherwise (a cycle is broken at its smallest id)."""
    items = sorted(items)
    ids = {rid for rid, _ in items}
    parents = {rid: {i for t, i in targets(set(reference_texts(data))) if t == rtype
                     and i in ids and i != rid} for rid, data in items}
    placed: set[str] = set()
    out: list[tuple[str, bytes]] = []
    pending = list(items)
    while pending:
        ready = [(rid, data) for rid, data in pending if parents[rid] <= placed]
        if not ready:  # a cycle: break it
            ready = pending[:1]
        for rid, _ in ready:
            placed.add(rid)
        out.extend(ready)
        taken = {rid for rid, _ in ready}
        pending = [p for p in pending if p[0] not in taken]
    return out
