"""The small FHIRPath subset that the official SearchParameter expressions of our resource
types use, evaluated over plain JSON dicts.

Supported: paths (`AdverseEvent.suspectEntity.instance`, choice elements such as
`occurrence` finding `occurrenceDateTime`), union `|`, parentheses, `x as T`, `x is T`,
`.as(T)`, `.ofType(T)`, `.where(...)`, `.exists()`, `.first()`, `.resolve()` (to the type
named by a literal reference: enough for `where(resolve() is Patient)`), `.extension(url)`,
`=`, `!=`, `and`, and string/boolean/number literals.

Every node carries its FHIR type, read from the official JSON schema (`$ref` of each
property), so type tests and value extraction need no hand-written tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..validation import FhirVersion, _schema


@dataclass(frozen=True, slots=True)
class Node:
    """One item of a FHIRPath collection: a JSON value and its FHIR type (None if unknown)."""

    value: Any
    type: str | None


Eval = Callable[[list[Node], "Context"], list[Node]]


@dataclass(frozen=True, slots=True)
class Context:
    version: FhirVersion
    root: Node


class FhirPathError(ValueError):
    """An expression outside the supported subset."""


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<op>!=|[|().,=])
  | (?P<name>`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise FhirPathError(f"cannot parse {text[pos:]!r} in {text!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent, FHIRPath precedence: and < (=, !=) < | < (is, as) < invocation."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        return value is None or self.toks[self.i][1] == value

    def take(self, value: str | None = None) -> tuple[str, str]:
        if not self.peek(value):
            raise FhirPathError(f"expected {value or 'more'} in {self.text!r}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Eval:
        expr = self.and_expr()
        if self.i != len(self.toks):
            raise FhirPathError(f"unexpected {self.toks[self.i][1]!r} in {self.text!r}")
        return expr

    def and_expr(self) -> Eval:
        left = self.eq_expr()
        while self.peek("and"):
            self.take()
            left = _and(left, self.eq_expr())
        return left

    def eq_expr(self) -> Eval:
        left = self.union_expr()
        if self.peek("=") or self.peek("!="):
            op = self.take()[1]
            left = _equals(left, self.union_expr(), negate=op == "!=")
        return left

    def union_expr(self) -> Eval:
        parts = [self.type_expr()]
        while self.peek("|"):
            self.take()
            parts.append(self.type_expr())
        return parts[0] if len(parts) == 1 else _union(parts)

    def type_expr(self) -> Eval:
        term = self.term()
        if self.peek("as") or self.peek("is"):
            op = self.take()[1]
            name = self.take()[1]
            return _as_type(term, name) if op == "as" else _is_type(term, name)
        return term

    def term(self) -> Eval:
        kind, value = self.take()
        if value == "(":
            expr = self.and_expr()
            self.take(")")
        elif kind == "str":
            expr = _literal(Node(value[1:-1].replace("\\'", "'"), "string"))
        elif kind == "num":
            expr = _literal(Node(float(value) if "." in value else int(value), "decimal"))
        elif value in ("true", "false"):
            expr = _literal(Node(value == "true", "boolean"))
        elif kind == "name":
            expr = self.invocation(value.strip("`"), start=True)
        else:
            raise FhirPathError(f"unexpected {value!r} in {self.text!r}")
        while self.peek("."):
            self.take()
            expr = _chain(expr, self.invocation(self.take()[1].strip("`"), start=False))
        return expr

    def invocation(self, name: str, start: bool) -> Eval:
        if not self.peek("("):
            return _root_or_child(name) if start else _child(name)
        self.take("(")
        args: list[Eval] = []
        raw: list[str] = []
        while not self.peek(")"):
            if args:
                self.take(",")
            begin = self.i
            args.append(self.and_expr())
            raw.append(" ".join(t[1] for t in self.toks[begin:self.i]))
        self.take(")")
        return _function(name, args, raw, self.text)


def _chain(first: Eval, then: Eval) -> Eval:
    return lambda focus, ctx: then(first(focus, ctx), ctx)


def _literal(node: Node) -> Eval:
    return lambda focus, ctx: [node]


def _union(parts: list[Eval]) -> Eval:
    return lambda focus, ctx: [n for part in parts for n in part(focus, ctx)]


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


def _as_type(term: Eval, name: str) -> Eval:
    return lambda focus, ctx: [n for n in term(focus, ctx) if type_matches(n.type, name)]


def _is_type(term: Eval, name: str) -> Eval:
    def run(focus: list[Node], ctx: Context) -> list[Node]:
        nodes = term(focus, ctx)
        return [Node(type_matches(nodes[0].type, name), "boolean")] if len(nodes) == 1 else []
    return run


def _root_or_child(name: str) -> Eval:
    def run(focus: list[Node], ctx: Context) -> list[Node]:
        if name in ("Resource", "DomainResource") or name == ctx.root.type:
            return [ctx.root]
        if name[:1].isupper():  # a path on another resource type: nothing here
            return []
        return children(focus, name, ctx.version)
    return run


def _child(name: str) -> Eval:
    return lambda focus, ctx: children(focus, name, ctx.version)


def _function(name: str, args: list[Eval], raw: list[str], text: str) -> Eval:
    if name == "where" and len(args) == 1:
        cond = args[0]
        return lambda focus, ctx: [n for n in focus if _truth(cond([n], ctx)) is True]
    if name == "exists" and not args:
        return lambda focus, ctx: [Node(bool(focus), "boolean")]
    if name == "first" and not args:
        return lambda focus, ctx: focus[:1]
    if name in ("ofType", "as") and len(raw) == 1:
        return lambda focus, ctx: [n for n in focus if type_matches(n.type, raw[0])]
    if name == "resolve" and not args:
        return lambda focus, ctx: [r for n in focus if (r := _resolve(n)) is not None]
    if name == "extension" and len(args) == 1:
        url = args[0]

        def run(focus: list[Node], ctx: Context) -> list[Node]:
            wanted = [n.value for n in url(focus, ctx)]
            return [n for n in children(focus, "extension", ctx.version)
                    if isinstance(n.value, dict) and n.value.get("url") in wanted]
        return run
    raise FhirPathError(f"function {name}() is outside the supported subset in {text!r}")


def _resolve(node: Node) -> Node | None:
    """Stand-in for the referenced resource: only its type, from the literal reference."""
    from .values import reference_target

    if not isinstance(node.value, dict):
        return None
    target = reference_target(node.value)
    return Node({"resourceType": target[0]}, target[0]) if target and target[0] else None


@cache
def property_types(version: FhirVersion, owner: str) -> dict[str, str | None]:
    """Property name -> FHIR type for one schema definition (backbone elements included)."""
    definition = _schema(version)["definitions"].get(owner, {})
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
        types = property_types(version, node.type) if node.type else {}
        if name in value:
            _extend(out, value[name], types.get(name))
            continue
        for key, item in value.items():
            if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
                suffix = key[len(name):]
                guess = suffix if suffix in _COMPLEX else suffix[0].lower() + suffix[1:]
                _extend(out, item, types.get(key) or guess)
    return out


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


@cache
def compile_expression(text: str) -> Eval:
    """Parse once; the result evaluates against a focus collection and a context."""
    return _Parser(text).parse()


def evaluate(expression: str, resource: dict[str, Any], version: FhirVersion,
             focus: list[Node] | None = None) -> list[Node]:
    """Evaluate `expression` on `resource` (or on `focus`, for composite components)."""
    root = Node(resource, resource.get("resourceType"))
    return compile_expression(expression)([root] if focus is None else focus,
                                          Context(version, root))
