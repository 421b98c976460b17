"""FHIRPath Patch (R4 fhirpatch.html): a Parameters resource of `operation` parameters (add,
insert, delete, replace, move) applied to a resource held as a plain dict.

The paths of a patch name places, not values, so they are walked here step by step keeping
each element's container and key: `Type.elem`, `elem[n]`, `.where(criteria)`, `.first()`,
`.last()` and `.ofType(T)`. The criteria inside `where(...)` are evaluated by the
store's FHIRPath evaluator (store/fhirpath.py) with the element as focus; the element types
come from the official JSON schema, as there.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, Issue
from ..fhirversion import FhirVersion, definitions
from ..store.fhirpath import FhirPathError, Node, evaluate, property_types

OPERATIONS = ("add", "insert", "delete", "replace", "move")


class PatchError(BadRequest):
    """A patch that does not apply to this resource (422: the request was well formed)."""

    status, code = 422, "processing"


@dataclass
class Slot:
    """Where one element lives: container[key] (a dict and its key, or a list and an index)
    and the element's FHIR type."""

    container: Any
    key: Any
    type: str | None

    @property
    def value(self) -> Any:
        return self.container[self.key]


def _steps(path: str) -> list[str]:
    """'Patient.name.where(use = 'official').given[0]' -> ['Patient', 'name',
    "where(use = 'official')", 'given', '[0]'] (dots and brackets at the top level only)."""
    out, depth, quote, current = [], 0, False, ""
    for ch in path:
        if quote:
            current += ch
            quote = ch != "'" or current.endswith("\\'")
            continue
        if ch == "'":
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and ch in ".[":
            if current.strip():
                out.append(current.strip())
            current = "[" if ch == "[" else ""
            continue
        current += ch
    if depth or quote:
        raise BadRequest(f"unbalanced parentheses or quotes in path {path!r}")
    if current.strip():
        out.append(current.strip())
    return out


def _children(slot: Slot, name: str, version: FhirVersion) -> list[Slot]:
    value = slot.value
    if not isinstance(value, dict):
        return []
    keys = [name] if name in value else [k for k in value if k.startswith(name)
                                         and len(k) > len(name) and k[len(name)].isupper()]
    out = []
    types = property_types(version, slot.type) if slot.type else {}
    for key in keys:
        type_ = types.get(key)
        if isinstance(value[key], list):
            out.extend(Slot(value[key], i, type_) for i in range(len(value[key])))
        else:
            out.append(Slot(value, key, type_))
    return out


def locate(resource: dict[str, Any], path: str, version: FhirVersion) -> list[Slot]:
    """The elements `path` names in `resource` (its first step is the resource type)."""
    steps = _steps(path)
    rtype = resource.get("resourceType")
    if not steps or steps[0] != rtype:
        raise BadRequest(f"path {path!r} must start with the resource type {rtype}")
    focus = [Slot({"": resource}, "", rtype)]
    for step in steps[1:]:
        focus = _step(focus, step, path, resource, version)
    return focus


def _step(focus: list[Slot], step: str, path: str, resource: dict[str, Any],
          version: FhirVersion) -> list[Slot]:
    if step.startswith("["):
        if not step.endswith("]") or not step[1:-1].strip().isdigit():
            raise BadRequest(f"indexer {step} in path {path!r} is not [number]")
        n = int(step[1:-1])
        return focus[n:n + 1]
    if step in ("first()", "last()"):
        return focus[:1] if step == "first()" else focus[-1:]
    if step.startswith("where(") and step.endswith(")"):
        criteria = step[len("where("):-1]
        try:
            return [s for s in focus if any(
                n.value is True for n in evaluate(criteria, resource, version,
                                                  [Node(s.value, s.type)]))]
        except FhirPathError as exc:
            raise BadRequest(f"path {path!r}: {exc}") from exc
    if step.startswith("ofType(") and step.endswith(")"):
        wanted = step[len("ofType("):-1].strip()
        return [s for s in focus if s.type == wanted]
    if not step.replace("_", "").isalnum():
        raise BadRequest(f"path {path!r}: step {step!r} is not supported in a patch path "
                         "(element names, [n], where(), first(), last(), ofType())")
    return [c for s in focus for c in _children(s, step, version)]


def _one(slots: list[Slot], path: str, op: str) -> Slot:
    if len(slots) != 1:
        raise PatchError(f"{op}: path {path!r} matches {len(slots)} elements, not one")
    return slots[0]


def _is_list(version: FhirVersion, owner: str | None, name: str) -> bool:
    spec = definitions(version).get(owner or "", {}).get("properties", {}).get(name)
    return bool(spec and spec.get("type") == "array")


def _value(part: dict[str, Any], where: str) -> Any:
    """A patch value: value[x] (its key's suffix names its type) or nested parts."""
    keys = [k for k in part if k.startswith("value")]
    if keys:
        return part[keys[0]]
    if isinstance(part.get("part"), list):
        out: dict[str, Any] = {}
        for sub in part["part"]:
            name = sub.get("name")
            if not isinstance(name, str):
                raise BadRequest(f"{where}: a part without a name")
            item = _value(sub, f"{where}.part({name})")
            if name in out:
                out[name] = out[name] if isinstance(out[name], list) else [out[name]]
                out[name].append(item)
            else:
                out[name] = item
        return out
    raise BadRequest(f"{where}: no value[x] and no parts")


def _value_key(part: dict[str, Any]) -> str | None:
    return next((k for k in part if k.startswith("value")), None)


def _operation(param: dict[str, Any], index: int) -> dict[str, Any]:
    where = f"Parameters.parameter[{index}]"
    if param.get("name") != "operation" or not isinstance(param.get("part"), list):
        raise BadRequest(f"{where}: a FHIRPath Patch holds only 'operation' parameters "
                         "with parts")
    out: dict[str, Any] = {"where": where}
    for part in param["part"]:
        name = part.get("name") if isinstance(part, dict) else None
        if name == "value":
            out["value"] = _value(part, f"{where}.part(value)")
            out["value_key"] = _value_key(part)
        elif name in ("type", "path", "name", "index", "source", "destination"):
            key = _value_key(part)
            if key is None:
                raise BadRequest(f"{where}.part({name}) has no value")
            out[name] = part[key]
        else:
            raise BadRequest(f"{where}: unknown part {name!r}")
    if out.get("type") not in OPERATIONS:
        raise BadRequest(f"{where}: type {out.get('type')!r} is not one of "
                         + ", ".join(OPERATIONS))
    if not isinstance(out.get("path"), str):
        raise BadRequest(f"{where}: no path")
    return out


def _index(op: dict[str, Any], name: str) -> int:
    value = op.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRequest(f"{op['where']}: {op['type']} needs a non-negative integer {name}")
    return value


def _list_at(slot: Slot, path: str, op: str) -> list[Any]:
    # A path to a repeating element names its items; the list is their container.
    if isinstance(slot.container, list):
        return slot.container
    if isinstance(slot.value, list):
        return slot.value
    raise PatchError(f"{op}: path {path!r} is not a repeating element")


def _list_of(slots: list[Slot], path: str, op: str) -> list[Any]:
    containers = {id(s.container): s.container for s in slots if isinstance(s.container, list)}
    if len(containers) != 1 or len(slots) != len(next(iter(containers.values()))):
        raise PatchError(f"{op}: path {path!r} must name one whole repeating element")
    return next(iter(containers.values()))


def _prune(value: Any) -> Any:
    """Drop the empty objects and lists a delete leaves behind (FHIR has no empty elements)."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [v for v in (_prune(x) for x in value) if v not in ({}, [], None)]
    return value


def _apply(resource: dict[str, Any], op: dict[str, Any], version: FhirVersion) -> None:
    kind, path = op["type"], op["path"]
    slots = locate(resource, path, version)
    if kind == "delete":
        if len(slots) > 1:
            raise PatchError(f"delete: path {path!r} matches {len(slots)} elements, not one")
        for slot in slots:
            del slot.container[slot.key]
        return
    if kind in ("add", "insert", "replace") and "value" not in op:
        raise BadRequest(f"{op['where']}: {kind} needs a value")
    if kind == "replace":
        slot = _one(slots, path, kind)
        slot.container[slot.key] = op["value"]
    elif kind == "add":
        slot = _one(slots, path, kind)
        name = op.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{op['where']}: add needs a name")
        target = slot.value
        if not isinstance(target, dict):
            raise PatchError(f"add: path {path!r} is a primitive value; it cannot get {name}")
        types = property_types(version, slot.type) if slot.type else {}
        if name not in types and op.get("value_key"):  # a choice: deceased + Boolean
            typed = name + op["value_key"][len("value"):]
            name = typed if typed in types else name
        if name in target and isinstance(target[name], list):
            target[name].append(op["value"])
        elif _is_list(version, slot.type, name):
            target[name] = [op["value"]]
        else:
            target[name] = op["value"]
    elif kind == "insert":
        items = _list_of(slots, path, kind) if slots else None
        if items is None:
            raise PatchError(f"insert: path {path!r} names no existing list")
        at = _index(op, "index")
        if at > len(items):
            raise PatchError(f"insert: index {at} is beyond the {len(items)} items of {path!r}")
        items.insert(at, op["value"])
    else:  # move
        items = _list_of(slots, path, kind) if slots else None
        if items is None:
            raise PatchError(f"move: path {path!r} names no existing list")
        source, destination = _index(op, "source"), _index(op, "destination")
        if source >= len(items) or destination >= len(items):
            raise PatchError(f"move: {path!r} has {len(items)} items; source {source} and "
                             f"destination {destination} must be below that")
        items.insert(destination, items.pop(source))


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any],
                         version: FhirVersion) -> dict[str, Any]:
    """`resource` with the FHIRPath Patch `parameters` applied in order (a new dict)."""
    params = parameters.get("parameter")
    if not isinstance(params, list) or not params:
        raise BadRequest("a FHIRPath Patch is a Parameters resource with at least one "
                         "'operation' parameter",
                         [Issue("error", "required", "no operation", "Parameters.parameter")])
    ops = []
    for i, p in enumerate(params):
        try:
            ops.append(_operation(p if isinstance(p, dict) else {}, i))
        except BadRequest as exc:
            raise _located(exc, f"Parameters.parameter[{i}]") from exc
    out = copy.deepcopy(resource)
    for op in ops:
        try:
            _apply(out, op, version)
        except BadRequest as exc:
            raise _located(exc, op["where"]) from exc
    return _prune(out)


def _located(exc: BadRequest, where: str) -> BadRequest:
    message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
    return type(exc)(message, [Issue("error", exc.code, exc.message, where)])
