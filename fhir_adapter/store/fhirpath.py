"""The small FHIRPath subset that the official SearchParameter expressions of our resource
types use, evaluated over plain JSON dicts.

Supported: paths (`AdverseEvent.suspectEntity.instance`, choice elements such as
`occurrence` finding `occurrenceDateTime`), union `|`, parentheses, `x as T`, `x is T`,
`.as(T)`, `.ofType(T)`, `.where(...)`, `.exists()`, `.first()`, `.resolve()` (to the type
named by a literal reference: enough for `where(resolve() is Patient)`), `.extension(url)`,
`=`, `!=`, `and`, and string/boolean/number literals.

Every node carries its FHIR type, read from the official JSON schema (`$ref` of each
property), so type tests and value extraction need no hand-written tables.

This module parses expressions into syntax trees and tells, from a tree, which leading
steps an expression needs to find anything (`root_paths`: indexing skips the parameters a
resource cannot match); fhirpath_eval.py evaluates the trees.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from ..fhirversion import FhirVersion
from .fhirpath_eval import (
    Ast,
    Context,
    Eval,
    Node,
    children,
    compile_ast,
    property_types,
    type_matches,
)

__all__ = ["Ast", "Context", "Eval", "FhirPathError", "Node", "children", "compile_expression",
           "compile_for", "evaluate", "property_types", "root_paths", "type_matches"]


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

    def parse(self) -> Ast:
        expr = self.and_expr()
        if self.i != len(self.toks):
            raise FhirPathError(f"unexpected {self.toks[self.i][1]!r} in {self.text!r}")
        return expr

    def and_expr(self) -> Ast:
        left = self.eq_expr()
        while self.peek("and"):
            self.take()
            left = ("and", left, self.eq_expr())
        return left

    def eq_expr(self) -> Ast:
        left = self.union_expr()
        if self.peek("=") or self.peek("!="):
            op = self.take()[1]
            left = ("eq", left, self.union_expr(), op == "!=")
        return left

    def union_expr(self) -> Ast:
        parts = [self.type_expr()]
        while self.peek("|"):
            self.take()
            parts.append(self.type_expr())
        return parts[0] if len(parts) == 1 else ("union", tuple(parts))

    def type_expr(self) -> Ast:
        term = self.term()
        if self.peek("as") or self.peek("is"):
            op = self.take()[1]
            return (op, term, self.take()[1])
        return term

    def term(self) -> Ast:
        kind, value = self.take()
        if value == "(":
            expr = self.and_expr()
            self.take(")")
        elif kind == "str":
            expr = ("lit", Node(value[1:-1].replace("\\'", "'"), "string"))
        elif kind == "num":
            expr = ("lit", Node(float(value) if "." in value else int(value), "decimal"))
        elif value in ("true", "false"):
            expr = ("lit", Node(value == "true", "boolean"))
        elif kind == "name":
            expr = self.invocation(value.strip("`"), start=True)
        else:
            raise FhirPathError(f"unexpected {value!r} in {self.text!r}")
        while self.peek("."):
            self.take()
            step = self.invocation(self.take()[1].strip("`"), start=False)
            if step[0] == "child" and expr[0] in ("path", "child"):  # one walk, not a chain
                expr = (*expr[:-1], expr[-1] + step[1])
            else:
                expr = ("chain", expr, step)
        return expr

    def invocation(self, name: str, start: bool) -> Ast:
        if not self.peek("("):
            return ("path", name, ()) if start else ("child", (name,))
        self.take("(")
        args: list[Ast] = []
        raw: list[str] = []
        while not self.peek(")"):
            if args:
                self.take(",")
            begin = self.i
            args.append(self.and_expr())
            raw.append(" ".join(t[1] for t in self.toks[begin:self.i]))
        self.take(")")
        if (name, len(args)) not in _FUNCTIONS:
            raise FhirPathError(f"function {name}() is outside the supported subset in "
                                f"{self.text!r}")
        return ("fn", name, tuple(args), tuple(raw))


# (name, number of arguments) of the supported functions
_FUNCTIONS = frozenset({("where", 1), ("exists", 0), ("first", 0), ("ofType", 1), ("as", 1),
                        ("resolve", 0), ("extension", 1)})


@cache
def _parse(text: str) -> Ast:
    return _Parser(text).parse()


@cache
def compile_expression(text: str) -> Eval:
    """Parse once; the result evaluates against a focus collection and a context."""
    return compile_ast(_parse(text))


@cache
def compile_for(text: str, version: FhirVersion, resource_type: str) -> Eval:
    """compile_expression for roots (ctx.root) of `resource_type` in `version` only."""
    return compile_ast(_parse(text), (version, resource_type))


@cache
def root_paths(text: str, resource_type: str) -> frozenset[tuple[str, ...]] | None:
    """Leading child steps (one or two names) of the paths in `text` from a `resource_type`
    root: unless one of them finds something (a choice element counts under its stem:
    `occurrence` finds `occurrenceDateTime`), the expression yields nothing. None when that
    cannot be told (`exists()`, `and`, a bare root, literals)."""
    return _paths(_parse(text), resource_type)


def _paths(ast: Ast, rtype: str) -> frozenset[tuple[str, ...]] | None:
    tag = ast[0]
    if tag == "path":
        start, steps = ast[1], ast[2]
        if start in (rtype, "Resource", "DomainResource"):
            return frozenset((steps[:2],)) if steps else None
        return frozenset() if start[:1].isupper() else frozenset(((start, *steps[:1]),))
    if tag == "chain":  # empty stays empty through a child step or a filtering function
        then = ast[2]
        keeps_empty = then[0] == "child" or (then[0] == "fn" and then[1] != "exists")
        return _paths(ast[1], rtype) if keeps_empty else None
    if tag == "union":
        found = [_paths(p, rtype) for p in ast[1]]
        return None if any(f is None for f in found) else frozenset().union(*found)
    if tag in ("as", "is"):
        return _paths(ast[1], rtype)
    if tag == "eq":  # empty when either side is
        left = _paths(ast[1], rtype)
        return left if left is not None else _paths(ast[2], rtype)
    return None


def evaluate(expression: str, resource: dict[str, Any], version: FhirVersion,
             focus: list[Node] | None = None) -> list[Node]:
    """Evaluate `expression` on `resource` (or on `focus`, for composite components)."""
    root = Node(resource, resource.get("resourceType"))
    return compile_expression(expression)([root] if focus is None else focus,
                                          Context(version, root))
