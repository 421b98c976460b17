"""Exact structures of JSON resources, so that bulk validation checks leaves, not trees.

A mapping emits thousands of resources in a few dozen structures (keys, nesting, array
lengths, leaf types). Once one resource of a structure has passed the official schema, another
of the same structure passes exactly when each of its leaves passes the schema test that
applies at that position (fastschema.SchemaCompiler.leaf_checks). A `Plan` holds those tests,
each with a memo of the values that passed it (codes, systems and urls repeat), and, once its
structure keeps coming back, a compiled `extract` that recognises the structure and lists the
leaves without walking the tree. validation.validate(model="per-shape") uses them;
tests/test_structures.py pins the equivalence with the full check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .fastschema import LEAF_MEMO_LIMIT, MEMO_TEXT, LeafTest

Leaves = list[Any]
LEAF_TYPES = frozenset({str, int, float, bool, type(None)})  # hashable, unlike containers
_OBJECT, _ARRAY, _END, _ITEM = (object() for _ in range(4))  # markers, never equal to a key
_EXTRACT_LIMIT = 4000  # containers + leaves: larger resources are walked, not compiled


def structure(resource: dict[str, Any]) -> tuple[tuple, Leaves]:
    """(exact structure, leaves): the keys, nesting, array lengths and leaf types of a JSON
    object as a hashable key, and its leaf values depth first in dict/list order. Two values
    with the same key differ only in their leaves."""
    keys: list[Any] = []
    leaves: Leaves = []
    key, leaf = keys.append, leaves.append

    # A preorder walk: an object's value is a leaf when its name is followed by the next
    # name or _END, an array item when it is _ITEM; the types of the leaves come last.
    # The dispatch is written out twice on purpose: one function for both kinds (a flag
    # tested per item) walked ~21% slower (examples + 4000 generated AEs, side by side).
    def in_object(node: dict[str, Any]) -> None:
        for name, item in node.items():
            key(name)
            kind = type(item)
            if kind is dict:
                key(_OBJECT)
                in_object(item)
                key(_END)
            elif kind is list:
                key(_ARRAY)
                in_array(item)
                key(_END)
            else:
                leaf(item)

    def in_array(node: list[Any]) -> None:
        for item in node:
            kind = type(item)
            if kind is dict:
                key(_OBJECT)
                in_object(item)
                key(_END)
            elif kind is list:
                key(_ARRAY)
                in_array(item)
                key(_END)
            else:
                key(_ITEM)
                leaf(item)

    in_object(resource)
    return (tuple(keys), tuple(map(type, leaves))), leaves


def shape(value: Any, path: str = "") -> frozenset[tuple[str, str]]:
    """The structure of a JSON value: (path without indices, JSON type) pairs."""
    out: set[tuple[str, str]] = set()
    stack = [(path, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                stack.append((f"{where}.{key}", item))
        elif isinstance(node, list):
            for item in node:
                stack.append((where, item))
        else:
            out.add((where, type(node).__name__))
    return frozenset(out)


class Plan:
    """What a valid resource of one exact structure leaves to check in another of the same
    structure: one schema test per leaf, each remembering the values that passed it."""

    def __init__(self, tests: list[LeafTest], leaves: Leaves,
                 form: frozenset[tuple[str, str]]) -> None:
        self.tests = tests
        # One memo per (test, leaf type): 1 == True, so types never share a memo.
        self.memos = [_MEMOS.setdefault((test, type(value)), {})
                      for test, value in zip(tests, leaves, strict=True)]
        self.shape = form  # `shape` of every resource of this structure
        # resource -> its leaves when of this structure, else None: compiled once the
        # structure has come back often (Plans.COMPILE_AFTER), as compiling costs milliseconds
        self.extract: Callable[[Any], Leaves | None] | None = None
        self.uses = 0

    def passes(self, leaves: Leaves) -> bool:
        """True when every leaf passes its test (then the whole resource does)."""
        for memo, test, value in zip(self.memos, self.tests, leaves, strict=True):
            if value not in memo:  # a memo holds values that passed
                if not test(value):
                    return False
                if type(value) is not str or len(value) <= MEMO_TEXT:
                    if len(memo) >= LEAF_MEMO_LIMIT:
                        memo.clear()
                    memo[value] = True
        return True


_MEMOS: dict[tuple[LeafTest, type], dict[Any, bool]] = {}  # (test, leaf type) -> passed


def make_plan(tests: list[LeafTest] | None, leaves: Leaves,
              form: frozenset[tuple[str, str]]) -> Plan | None:
    """The plan of a valid resource of `leaves` from its leaf tests
    (fastschema.SchemaCompiler.leaf_checks); None when testing leaves is not enough (no
    tests) or a leaf is not a plain JSON value."""
    if tests is None or len(tests) != len(leaves):
        return None
    if any(type(value) not in LEAF_TYPES for value in leaves):
        return None
    return Plan(tests, leaves, form)


def compile_extract(resource: dict[str, Any]) -> Callable[[Any], Leaves | None] | None:
    """A function that returns the leaves of a resource of `resource`'s structure (as
    `structure` lists them for `resource`) and None for any other, in straight-line code:
    a type and a size per object and array, a lookup per key, a type per leaf. Objects may
    hold their keys in another order (neither the schema nor `shape` sees the order): each
    leaf still comes out in its key's place. None when `resource` is too large (or has keys
    that are not text) to be worth compiling."""
    lines = ["def extract(r):", "    try:"]
    leaves: list[str] = []
    kinds: list[type] = []
    count = [0]

    def visit(var: str, node: Any) -> bool:
        count[0] += 1
        if count[0] > _EXTRACT_LIMIT:
            return False
        if type(node) is dict:
            if any(type(k) is not str for k in node):
                return False
            # the same size and every key found: the same keys
            lines.append(f"        if type({var}) is not dict or len({var}) != {len(node)}: "
                         "return None")
            items = ((f"{var}[{k!r}]", item) for k, item in node.items())
        else:
            lines.append(f"        if type({var}) is not list or len({var}) != {len(node)}: "
                         "return None")
            items = ((f"{var}[{i}]", item) for i, item in enumerate(node))
        for expr, item in items:
            if type(item) in (dict, list):
                child = f"v{count[0]}"
                lines.append(f"        {child} = {expr}")
                if not visit(child, item):
                    return False
            else:
                count[0] += 1
                leaves.append(expr)
                kinds.append(type(item))
        return True

    if not visit("r", resource):
        return None
    lines += [f"        leaves = [{', '.join(leaves)}]",
              "    except KeyError:  # a key of the plan is missing: another structure",
              "        return None",
              "    if tuple(map(type, leaves)) != kinds: return None",
              "    return leaves"]
    scope: dict[str, Any] = {"kinds": tuple(kinds)}
    exec(compile("\n".join(lines), "<fhir_adapter.structures>", "exec"), scope)
    return scope["extract"]


class Plans:
    """Plans by (version, resource type, exact structure), bounded. A plan is made when a
    structure comes back (a structure seen once costs a walk, not a plan), and its `extract`
    compiled when it keeps coming back; the few last compiled per (version, resource type)
    are tried before walking a resource."""

    LIMIT = 2048  # exact structures remembered; a mapping makes a few dozen
    LARGEST = 4000  # keys and markers of a structure worth a plan (larger: checked in full)
    RECENT = 3  # compiled plans tried before walking the resource
    # Compiling `extract` costs what it saves over ~100-150 walks (measured: an AdverseEvent
    # compiles in ~2 ms, is walked in ~17 us, extracted in ~5 us): it is compiled once the
    # walk has found the plan that many times.
    COMPILE_AFTER = 128
    # Resources whose structures never repeat (CT.gov studies) gain nothing from the walk:
    # after MISSES walks without a plan in a row, that type skips the walk for a while.
    MISSES, SKIP, MAX_SKIP = 32, 64, 4096

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str, tuple], Plan | None] = {}  # None: check in full
        # hash of a structure valid once, no plan yet (a clash only makes a plan early)
        self._seen: set[int] = set()
        self._recent: dict[tuple[str, str], list[Plan]] = {}
        # (version, type) -> [walks without a plan in a row, resources left to skip, skip]
        self._luck: dict[tuple[str, str], list[int]] = {}

    def find(self, version: str, rtype: str, resource: dict[str, Any]
             ) -> tuple[Plan | None, tuple | None, Leaves]:
        """(plan or None, exact structure key, leaves); the key is None when the resource
        was recognised by a compiled plan (no key needed), or is not walked (too deep, or
        its type's structures do not repeat)."""
        kind = (version, rtype)
        recent = self._recent.get(kind)
        if recent:
            for plan in recent:
                leaves = plan.extract(resource)  # type: ignore[misc]
                if leaves is not None:
                    return plan, None, leaves
        luck = self._luck.get(kind)
        if luck is None:
            luck = self._luck[kind] = [0, 0, self.SKIP]
        if luck[1]:
            luck[1] -= 1
            return None, None, []
        try:
            keys, leaves = structure(resource)
        except RecursionError:  # absurdly deep: the full check says what is wrong
            return None, None, []
        key = (version, rtype, keys) if len(keys[0]) <= self.LARGEST else None
        plan = self._plans.get(key) if key is not None else None
        if plan is None:
            luck[0] += 1
            if luck[0] >= self.MISSES:  # skip for a while, longer each time
                luck[0], luck[1], luck[2] = 0, luck[2], min(2 * luck[2], self.MAX_SKIP)
        else:
            luck[0], luck[2] = 0, self.SKIP
            if plan.extract is None:
                plan.uses += 1
                if plan.uses >= self.COMPILE_AFTER:
                    self._compile(plan, version, rtype, resource)
        return plan, key, leaves

    def _compile(self, plan: Plan, version: str, rtype: str, resource: dict[str, Any]
                 ) -> None:
        # `resource` is of the plan's structure: find() just walked it.
        try:
            plan.extract = compile_extract(resource)
        except (RecursionError, SyntaxError, MemoryError):  # too deep to compile: walk it
            plan.extract = None
        if plan.extract is None:
            plan.uses = -(1 << 62)  # never try again
            return
        recent = self._recent.setdefault((version, rtype), [])
        recent.insert(0, plan)
        del recent[self.RECENT:]

    def valid(self, key: tuple, plan: Callable[[], Plan | None]) -> None:
        """A resource of structure `key` (with no plan) passed the full check: the second
        time, `plan()` is made and kept (None: leave that structure to the full check)."""
        if key in self._plans:
            return
        seen = hash(key)
        if seen not in self._seen:
            if len(self._seen) >= self.LIMIT:
                self._seen.clear()
            self._seen.add(seen)
            return
        self._seen.discard(seen)
        if len(self._plans) >= self.LIMIT:
            self._plans.clear()
            self._recent.clear()
        self._plans[key] = plan()
