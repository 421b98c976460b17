"""Evaluation of parsed FHIRPath (fhirpath.py) over plain JSON dicts: typed nodes, child
steps (choice elements included), and syntax trees compiled to closures.

A tree is compiled once per expression (`compile_expression`), or once per expression and
root type for indexing (`compile_for`), where the first step from the root reads the
resource directly with its type looked up at compile time. Two patterns of the official
expressions get their own closures, giving what the general ones give: `X.ofType(A) |
X.ofType(B)` evaluates X once, and `where(resolve() is T)` tests the reference's type
without building nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from ..fhirversion import FhirVersion, definitions
from .fhirpath_node import Node
from .values import reference_target

Eval = Callable[[list[Node], "Context"], list[Node]]


@dataclass(slots=True)
class Context:
    """What an evaluation needs besides its focus (not frozen: cheaper to build, once per
    indexed resource)."""

    version: FhirVersion
    root: Node


# A syntax tree: tuples tagged by their first item ("path", "child", "lit", "chain",
# "union", "and", "eq", "as", "is", "fn"), as fhirpath._Parser builds them.
Ast = tuple[Any, ...]


# (FHIR version, resource type) that an expression is compiled for, when known in advance
Root = tuple[FhirVersion, str] | None


def compile_ast(ast: Ast, root: Root = None) -> Eval:
    """The closure that evaluates `ast` (compiled for roots of one type when `root` says)."""
    tag = ast[0]
    if tag == "path":
        return _path(ast[1], ast[2], root)
    if tag == "child":
        return _walk(ast[1])
    if tag == "lit":
        node = ast[1]
        return lambda focus, ctx: [node]
    if tag == "chain":
        first, then = compile_ast(ast[1], root), compile_ast(ast[2], root)
        return lambda focus, ctx: then(first(focus, ctx), ctx)
    if tag == "union":
        filters = [f for p in ast[1] if (f := _type_filter(p))]
        if len(filters) == len(ast[1]) and len({term for term, _ in filters}) == 1:
            return _of_types(compile_ast(filters[0][0], root), [name for _, name in filters])
        parts = [compile_ast(p, root) for p in ast[1]]
        return lambda focus, ctx: [n for part in parts for n in part(focus, ctx)]
    if tag == "and":
        return _and(compile_ast(ast[1], root), compile_ast(ast[2], root))
    if tag == "eq":
        return _equals(compile_ast(ast[1], root), compile_ast(ast[2], root), ast[3])
    if tag == "as":
        return _as_type(compile_ast(ast[1], root), ast[2])
    if tag == "is":
        return _is_type(compile_ast(ast[1], root), ast[2])
    if ast[1] == "where" and ast[2][0][0] == "is" and ast[2][0][1] == ("fn", "resolve", (), ()):
        return _where_resolves_to(ast[2][0][2])
    return _function(ast[1], [compile_ast(a, root) for a in ast[2]], ast[3])


def _type_filter(ast: Ast) -> tuple[Ast, str] | None:
    """(X, T) of `X as T`, `X.as(T)` or `X.ofType(T)`."""
    if ast[0] == "as":
        return ast[1], ast[2]
    if ast[0] == "chain" and ast[2][0] == "fn" and ast[2][1] in ("ofType", "as"):
        return ast[1], ast[2][3][0]
    return None


def _of_types(term: Eval, names: list[str]) -> Eval:
    """`X.ofType(A) | X.ofType(B) | ...` (the official choice-element date parameters) with
    X evaluated once: the union of the filters, in order."""
    wanted = [name.lower() for name in names]

    def run(focus: list[Node], ctx: Context) -> list[Node]:
        nodes = term(focus, ctx)
        return [n for w in wanted for n in nodes if n.type is not None and n.type.lower() == w]
    return run


def _truth(nodes: list[Node]) -> bool | None:
    if len(nodes) == 1 and isinstance(nodes[0].value, bool):
        return nodes[0].value
    return None if not nodes else True


def _and(left: Eval, right: Eval) -> Eval:
    def run(focus: list[Node], ctx: Context) -> list[Node]:
        a, b = _truth(left(focus, ctx)), _truth(right(focus, ctx))
        if a is False or b is False:
            return [Node(False, "boolean")]
        return [Node(True, "boolean")] if a and b else []
    return run


def _equals(left: Eval, right: Eval, negate: bool) -> Eval:
    def run(focus: list[Node], ctx: Context) -> list[Node]:
        a, b = left(focus, ctx), right(focus, ctx)
        if not a or not b:
            return []
        same = [n.value for n in a] == [n.value for n in b]
        return [Node(same != negate, "boolean")]
    return run


def type_matches(node_type: str | None, name: str) -> bool:
    """FHIR type test, forgiving the case of the first letter (`dateTime` vs `DateTime`)."""
    return node_type is not None and node_type.lower() == name.lower()


def _of_type(nodes: list[Node], wanted: str) -> list[Node]:
    """The nodes of type `wanted` (lower case): type_matches, on the hot path of indexing."""
    return [n for n in nodes if n.type is not None and n.type.lower() == wanted]


def _as_type(term: Eval, name: str) -> Eval:
    wanted = name.lower()
    return lambda focus, ctx: _of_type(term(focus, ctx), wanted)


def _is_type(term: Eval, name: str) -> Eval:
    def run(focus: list[Node], ctx: Context) -> list[Node]:
        nodes = term(focus, ctx)
        return [Node(type_matches(nodes[0].type, name), "boolean")] if len(nodes) == 1 else []
    return run


def _path(start: str, steps: tuple[str, ...], root: Root) -> Eval:
    """`start.steps...`: `start` names the root (its type, Resource, DomainResource), another
    resource type (nothing here) or a child of the focus."""
    if root and (start in ("Resource", "DomainResource") or start == root[1]):
        return _root_path(steps, root)
    walk = _walk(steps)
    common = start in ("Resource", "DomainResource")
    other_type = start[:1].isupper()

    def run(focus: list[Node], ctx: Context) -> list[Node]:
        if common or start == ctx.root.type:
            return walk([ctx.root], ctx)
        if other_type:  # a path on another resource type: nothing here
            return []
        return walk(children(focus, start, ctx.version), ctx)
    return run


def _root_path(steps: tuple[str, ...], root: tuple[FhirVersion, str]) -> Eval:
    """A path from the root, compiled for a known root type: its first step reads the
    resource directly, with the child's type looked up once (the hot path of indexing)."""
    if not steps:
        return lambda focus, ctx: [ctx.root]
    first, version = steps[0], root[0]
    type_ = property_types(version, root[1]).get(first)
    walk = _walk(steps[1:]) if len(steps) > 1 else None

    def run(focus: list[Node], ctx: Context) -> list[Node]:
        value = ctx.root.value
        if first not in value:  # absent, or a choice element
            nodes = children([ctx.root], first, version)
        elif isinstance(item := value[first], list):
            nodes = [Node(v, type_) for v in item if v is not None]
        else:
            nodes = [] if item is None else [Node(item, type_)]
        return walk(nodes, ctx) if walk and nodes else nodes
    return run


def _walk(steps: tuple[str, ...]) -> Eval:
    def run(focus: list[Node], ctx: Context) -> list[Node]:
        for name in steps:
            if not focus:
                break
            focus = children(focus, name, ctx.version)
        return focus
    return run


def _function(name: str, args: list[Eval], raw: tuple[str, ...]) -> Eval:
    if name == "where" and len(args) == 1:
        cond = args[0]
        return lambda focus, ctx: [n for n in focus if _truth(cond([n], ctx)) is True]
    if name == "exists" and not args:
        return lambda focus, ctx: [Node(bool(focus), "boolean")]
    if name == "first" and not args:
        return lambda focus, ctx: focus[:1]
    if name in ("ofType", "as") and len(raw) == 1:
        wanted = raw[0].lower()
        return lambda focus, ctx: _of_type(focus, wanted)
    if name == "resolve" and not args:
        return lambda focus, ctx: [r for n in focus if (r := _resolve(n)) is not None]
    if name == "extension" and len(args) == 1:
        url = args[0]

        def run(focus: list[Node], ctx: Context) -> list[Node]:
            wanted = [n.value for n in url(focus, ctx)]
            return [n for n in children(focus, "extension", ctx.version)
                    if isinstance(n.value, dict) and n.value.get("url") in wanted]
        return run
    raise AssertionError(f"{name}() passed the parser")  # _FUNCTIONS lists what is here


def _where_resolves_to(name: str) -> Eval:
    """`where(resolve() is T)`, the references to a T (the official patient parameters):
    what _function's general where, resolve and is give, without their nodes."""
    wanted = name.lower()
    target_of = reference_target

    def run(focus: list[Node], ctx: Context) -> list[Node]:
        out = []
        for n in focus:
            if isinstance(n.value, dict):
                target = target_of(n.value)
                if target and target[0] and target[0].lower() == wanted:
                    out.append(n)
        return out
    return run


def _resolve(node: Node) -> Node | None:
    """Stand-in for the referenced resource: only its type, from the literal reference."""
    if not isinstance(node.value, dict):
        return None
    target = reference_target(node.value)
    return Node({"resourceType": target[0]}, target[0]) if target and target[0] else None


@cache
def property_types(version: FhirVersion, owner: str) -> dict[str, str | None]:
    """Property name -> FHIR type for one schema definition (backbone elements included)."""
    definition = definitions(version).get(owner, {})
    out: dict[str, str | None] = {}
    for prop, spec in definition.get("properties", {}).items():
        ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
        if ref:
            out[prop] = ref.rsplit("/", 1)[-1]
        elif "enum" in spec or "enum" in spec.get("items", {}):
            out[prop] = "code"  # required-binding codes are inline enums in the schema
        else:
            out[prop] = None
    return out


def children(focus: list[Node], name: str, version: FhirVersion) -> list[Node]:
    """The `name` children of every node, choice elements (`value[x]`) included."""
    out: list[Node] = []
    for node in focus:
        value = node.value
        if not isinstance(value, dict):
            continue
        if name in value:
            item = value[name]
            type_ = _CHILD_TYPES.get((version, node.type, name), _UNSET)
            if type_ is _UNSET:
                type_ = _child_type(version, node.type, name)
            if isinstance(item, list):
                out.extend([Node(v, type_) for v in item if v is not None])
            elif item is not None:
                out.append(Node(item, type_))
            continue
        if node.type is not None and name in property_types(version, node.type):
            continue  # an element of its own (`description`), not a choice: absent here
        keys = tuple(value)
        for key in (_choice_keys(keys, name) if len(keys) <= _CACHED_KEYS
                    else _choice_keys_of(keys, name)):
            suffix = key[len(name):]
            guess = suffix if suffix in _COMPLEX else suffix[0].lower() + suffix[1:]
            _extend(out, value[key], _child_type(version, node.type, key) or guess)
    return out


def _choice_keys_of(keys: tuple[str, ...], name: str) -> tuple[str, ...]:
    """The keys that choice element `name` takes (`occurrenceDateTime` for `occurrence`)."""
    return tuple(key for key in keys
                 if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper())


# Memoised by the object's keys: objects of one shape recur (a resource has ~20 keys); those
# with many keys are scanned, not kept.
_CACHED_KEYS = 64
_choice_keys = lru_cache(maxsize=4096)(_choice_keys_of)


_CHILD_TYPES: dict[tuple[str, str | None, str], str | None] = {}
_UNSET = object()


def _child_type(version: FhirVersion, owner: str | None, name: str) -> str | None:
    """property_types(version, owner).get(name), memoised flat: the hot path of indexing."""
    key = (version, owner, name)
    found = _CHILD_TYPES.get(key, _UNSET)
    if found is _UNSET:
        found = property_types(version, owner).get(name) if owner else None
        if len(_CHILD_TYPES) < 50_000:  # bounded: names in clients' JSON are arbitrary
            _CHILD_TYPES[key] = found
    return found  # type: ignore[return-value]


# Choice suffixes that name complex types (the others are primitives: lower-case first letter).
_COMPLEX = frozenset({
    "Address", "Age", "Annotation", "Attachment", "CodeableConcept", "CodeableReference",
    "Coding", "ContactPoint", "Count", "Distance", "Duration", "HumanName", "Identifier",
    "Money", "Period", "Quantity", "Range", "Ratio", "RatioRange", "Reference", "SampledData",
    "Signature", "Timing", "Expression", "Dosage", "Meta", "UsageContext", "ContactDetail",
})


def _extend(out: list[Node], value: Any, type_: str | None) -> None:
    if isinstance(value, list):
        out.extend(Node(v, type_) for v in value if v is not None)
    elif value is not None:
        out.append(Node(value, type_))
