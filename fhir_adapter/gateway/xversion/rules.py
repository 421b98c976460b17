"""The structural R4 <-> R5 changes that element-by-element conversion cannot see (renames,
an R4 status becoming R5 progress, references that became CodeableReferences, ...), as data
(rules.json) run by one function per kind of rule.

Each kind runs R4 -> R5 ("up") and R5 -> R4 ("down") so that down(up(x)) == x: what the
way up generates is recognised on the way down and dropped, and anything else goes to a
cross-version extension (packed by the caller from the keys left over). A value that
arrived from an extension (restored under its key, or '\\0key' when the key was taken)
wins over what a rule would generate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from ... import ids
from ...validation import FhirVersion
from .extensions import NotRepresentable
from .schema import codes, properties

Rule = dict[str, Any]


@cache
def rules(resource_type: str) -> list[Rule]:
    """The rules of one resource type, R4 -> R5 order."""
    path = resources.files("fhir_adapter").joinpath("gateway", "xversion", "rules.json")
    text = path.read_text("utf-8")
    return json.loads(text).get(resource_type, [])


@cache
def renamed(resource_type: str, version: FhirVersion) -> dict[str, str]:
    """Element path in `version` -> the same element's path in the other version (renames)."""
    out = {}
    for rule in rules(resource_type):
        if rule["kind"] in ("rename", "wrap") and "." not in rule["r5"]:
            r4 = rule["path"]
            r5 = r4.rsplit(".", 1)[0] + "." + rule["r5"]
            if version == "R4":
                out[r4] = r5
            else:
                out[r5] = r4
    return out


@cache
def retyped(resource_type: str, version: FhirVersion) -> frozenset[str]:
    """Paths (in `version`) whose type a rule changes: their children are checked, not
    their type."""
    out = set()
    for rule in rules(resource_type):
        if rule["kind"] in ("wrap", "choice-ref"):
            r4 = rule["path"]
            out.add(r4 if version == "R4" else r4.rsplit(".", 1)[0] + "." + rule["r5"])
    return frozenset(out)


def parents(resource: dict[str, Any], path: str) -> Iterator[dict[str, Any]]:
    """Every object at the parent path of `path` ('AdverseEvent.suspectEntity.instance' ->
    each suspectEntity item)."""
    steps = path.split(".")[1:-1]
    focus: list[Any] = [resource]
    for step in steps:
        nxt: list[Any] = []
        for obj in focus:
            value = obj.get(step) if isinstance(obj, dict) else None
            nxt.extend(value if isinstance(value, list) else [value] if value else [])
        focus = nxt
    yield from (o for o in focus if isinstance(o, dict))


RESTORED, HOMELESS = "\0", "\1"  # key prefixes: from an extension; for one (rules.py doc)


def _rename(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    old, new = rule["path"].rsplit(".", 1)[1], rule["r5"]
    src, dst = (old, new) if up else (new, old)
    # A restored value of the same choice element (occurrencePeriod for occurrenceDateTime)
    # keeps the target's place: the source value then goes to its own extension.
    taken = up and "choice" in rule and any(k.startswith(RESTORED + rule["choice"])
                                            for k in obj)
    if src in obj and dst not in obj and not taken:
        obj[dst] = obj.pop(src)


def _move(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    key = rule["path"].rsplit(".", 1)[1]
    outer, inner = rule["r5"].split(".")
    if up:
        target = obj.pop(RESTORED + outer, None) or obj.pop(outer, None) or {}
        value = obj.get(key)
        if value is not None and inner not in target and not (
                isinstance(value, list) and len(value) != 1):  # several: R5 holds one
            target[inner] = obj.pop(key)
        if target:
            obj[outer] = target
    elif isinstance(obj.get(outer), dict) and inner in obj[outer] and key not in obj:
        obj[key] = obj[outer].pop(inner)
        if not obj[outer]:
            del obj[outer]


def _wrap(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    """R4 X <-> R5 {field: X, ...}: the R5 item's other children travel in cross-version
    extensions on the R4 value (restored onto it on the way up, lifted back to the item)."""
    key, new, field = rule["path"].rsplit(".", 1)[1], rule["r5"], rule["field"]
    if up:
        value = obj.pop(key, None)
        items = [] if value is None else value if isinstance(value, list) else [value]
        wrapped = []
        for item in items:
            lifted = {k: item.pop(k) for k in [k for k in item if k.startswith(RESTORED)]} \
                if isinstance(item, dict) else {}
            wrapped.append(({field: item} if item != {} else {}) | lifted)
        wrapped += obj.pop(RESTORED + new, None) or []  # an older form: the whole item
        if wrapped:
            obj[new] = wrapped
        return
    items = obj.get(new)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return
    out = []
    for item in obj.pop(new):
        value = item.get(field, {})
        if not isinstance(value, dict):  # a primitive: its siblings cannot ride on it
            obj[new] = items
            return
        out.append({**value, **{HOMELESS + k: v for k, v in item.items() if k != field}})
    obj[key] = out


def _append(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    key, listed, field = rule["path"].rsplit(".", 1)[1], rule["r5"], rule["field"]
    if up:
        value = obj.pop(key, None)
        items = obj.pop(RESTORED + listed, None) or []
        items += obj.pop(listed, None) or []
        if value is not None:
            items.append({**rule["entry"], field: value})
        if items:
            obj[listed] = items
        return
    items = obj.get(listed)
    if isinstance(items, list) and items and key not in obj:
        last = items[-1]
        if isinstance(last, dict) and set(last) == {*rule["entry"], field} and \
                all(last[k] == v for k, v in rule["entry"].items()):
            obj[key] = items.pop()[field]
            if not items:
                del obj[listed]


def _state_entry(rule: Rule, code: str) -> dict[str, Any]:
    return {**rule["entry"], rule["field"]: {"coding": [{"system": rule["system"],
                                                          "code": code}]}}


def _latest(items: list[Any], rule: Rule, allowed: list[str]) -> tuple[int, str | None]:
    """(index, code) of the latest entry stating a code R4 knows; (-1, None) if none."""
    for n in range(len(items) - 1, -1, -1):
        concept = items[n].get(rule["field"]) if isinstance(items[n], dict) else None
        for coding in (concept or {}).get("coding", []) if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("code") in allowed and \
                    coding.get("system") in (rule["system"], *rule.get("aliases", ())):
                return n, coding["code"]
    return -1, None


def _state(obj: dict[str, Any], rule: Rule, up: bool, owner: str) -> None:
    """R4 status <-> R5 status + the latest progress entry with a code R4 knows."""
    key, listed, status = rule["path"].rsplit(".", 1)[1], rule["r5"], rule["status"]
    allowed = codes("R4", owner, key) or []
    if up:
        code = obj.pop(key, None)
        r5_status = obj.pop(RESTORED + status["r5"], None)
        items = obj.pop(RESTORED + listed, None) or []
        if code is not None:
            if _latest(items, rule, allowed)[1] != code:
                items.append(_state_entry(rule, code))
        r5_status = r5_status or status["map"].get(code, status["default"])
        if items:
            obj[listed] = items
        if r5_status is not None:
            obj[status["r5"]] = r5_status
        return
    items = obj.get(listed)
    at, code = _latest(items, rule, allowed) if isinstance(items, list) else (-1, None)
    if code is not None and isinstance(items, list) and at == len(items) - 1 \
            and items[-1] == _state_entry(rule, code) \
            and _latest(items[:-1], rule, allowed)[1] != code:
        items.pop()
    if listed in obj:
        obj.pop(listed)
        if items:
            obj[HOMELESS + listed] = items
    r5_status = obj.pop(status["r5"], None)
    if code is not None:  # else no R4 status: a placeholder holds the place (placeholders.py)
        obj[key] = code
    if r5_status is not None and r5_status != status["map"].get(code, status["default"]):
        obj[HOMELESS + status["r5"]] = r5_status


def _constant(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    key = rule["path"].rsplit(".", 1)[1]
    if up:
        if key not in obj and RESTORED + key not in obj:
            obj[key] = rule["value"]
    elif obj.get(key) == rule["value"]:
        del obj[key]


def _codemap(obj: dict[str, Any], rule: Rule, up: bool, owner: str) -> None:
    key, new = rule["path"].rsplit(".", 1)[1], rule["r5"]
    table = {json.loads(k): v for k, v in rule["map"].items()}
    if not up:
        table = {v: k for k, v in table.items()}
        key, new = new, key
    if key not in obj:
        return
    value = obj.pop(key)
    if value not in table:
        raise NotRepresentable(f"{owner}.{key}", f"{value!r} has no equivalent in the other "
                               "FHIR version")
    obj[new] = table[value]


def _choice_ref(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    base = rule["path"].rsplit(".", 1)[1]
    pairs = (("CodeableConcept", "concept"), ("Reference", "reference"))
    if up:
        for suffix, part in pairs:
            if base + suffix in obj and base not in obj:
                obj[base] = {part: obj.pop(base + suffix)}
        return
    item = obj.get(base)
    if isinstance(item, dict) and len(item) == 1:
        for suffix, part in pairs:
            if part in item:
                obj[base + suffix] = obj.pop(base)[part]


def _merge(obj: dict[str, Any], rule: Rule, up: bool, owner: str) -> None:
    """Items of an R5 list whose R4 counterpart (renamed) holds only some children: the
    others travel in one cross-version extension per item on the parent, naming the item by
    `key` (R4 arm + study-level comparisonGroup{linkId, name, intendedExposure} <-> R5
    comparisonGroup, as our own R4 study mapping writes it)."""
    listed, key, kept = rule["r5"], rule["key"], set(rule["r4"])
    order = list(properties("R5", rule["type"]))
    if up:
        extras = obj.pop(RESTORED + listed, None)
        if extras is None:
            return
        items = obj.get(listed) or []
        for extra in extras:
            match = [i for i in items if isinstance(i, dict) and i.get(key) == extra.get(key)
                     and not set(extra).difference(kept) & set(i)]
            if len(match) != 1:
                raise NotRepresentable(f"{owner}.extension", f"a {listed} extension names "
                                       f"{extra.get(key)!r}, which is not one {key} of "
                                       f"{owner}.{rule['path'].rsplit('.', 1)[1]}")
            merged = {**match[0], **{k: v for k, v in extra.items() if k != key}}
            match[0].clear()
            match[0].update({k: merged[k] for k in sorted(
                merged, key=lambda k: order.index(k) if k in order else len(order))})
        return
    items = obj.get(listed)
    if not isinstance(items, list):
        return
    extras = []
    for item in items:
        if not isinstance(item, dict) or key not in item:
            continue
        rest = {k: item.pop(k) for k in [k for k in item if k not in kept]}
        if rest:
            extra = {**rest, key: item[key]}
            extras.append({k: extra[k] for k in sorted(
                extra, key=lambda k: order.index(k) if k in order else len(order))})
    if extras:
        obj[HOMELESS + listed] = extras


# Functions a "derive" rule may name: the R5 value our own mappings compute from the R4 one.
DERIVE: dict[str, Callable[[Any], Any]] = {"arm_link_id": ids.arm_link_id}


def _derive(obj: dict[str, Any], rule: Rule, up: bool) -> None:
    """An R4 element kept (in its cross-version extension) beside the R5 element derived from
    it (R4 assignedArm 'Placebo' -> R5 assignedComparisonGroup 'arm-placebo', the linkId our
    study mapping gives the arm); on the way down the derived value goes when it still is
    what the R4 value gives, else it travels in its own extension."""
    key, new, derive = rule["path"].rsplit(".", 1)[1], rule["r5"], DERIVE[rule["function"]]
    if up:
        if isinstance(obj.get(key), str) and new not in obj and RESTORED + new not in obj:
            obj[new] = derive(obj[key])
        return
    source = obj.get(RESTORED + key, obj.get(key))
    if isinstance(source, str) and new in obj and obj[new] == derive(source):
        del obj[new]


_KINDS: dict[str, Callable[..., None]] = {
    "rename": _rename, "move": _move, "wrap": _wrap, "append": _append,
    "constant": _constant, "choice-ref": _choice_ref, "derive": _derive}


def apply(resource: dict[str, Any], up: bool) -> None:
    """Run the rules of the resource's type in place: R4 -> R5 (`up`) or R5 -> R4."""
    rtype = resource["resourceType"]
    ordered = rules(rtype) if up else list(reversed(rules(rtype)))
    for rule in ordered:
        for obj in list(parents(resource, rule["path"])):
            kind = rule["kind"]
            if kind == "state":
                _state(obj, rule, up, rtype)
            elif kind == "codemap":
                _codemap(obj, rule, up, rtype)
            elif kind == "merge":
                _merge(obj, rule, up, rtype)
            else:
                _KINDS[kind](obj, rule, up)
