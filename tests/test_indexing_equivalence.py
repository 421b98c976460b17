"""index_rows against a straightforward reference: each parameter's expression interpreted
from its syntax tree on the whole resource, rows deduplicated through one seen-set, as
indexing was first written. The fast path (per-type plans, parameters skipped by resource
shape, expressions compiled for their root type, the `X.ofType(A) | X.ofType(B)` and
`where(resolve() is T)` shortcuts, memoised conversions) must give the same rows in the same
order, or fail with the same exception on an invalid resource.

Inputs: the official R4/R5 examples, our examples and ConceptMaps mapped/indexed in R4 and R5,
generated AdverseEvents, and seeded random mutations of all of them (values replaced, wrapped
in lists, moved to choice-like keys, references of every form).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, ROOT

from fhir_adapter.pipeline.load import producer
from fhir_adapter.store import canonical
from fhir_adapter.store.fhirpath import Ast, Node, _parse, property_types, root_paths, type_matches
from fhir_adapter.store.fhirpath_eval import _COMPLEX
from fhir_adapter.store.indexing import (
    COLUMNS,
    EXTRACTORS,
    UNINDEXED,
    index_rows,
    index_tuples,
)
from fhir_adapter.store.searchparams import RESOURCE_TYPES, TABLE_OF, search_params
from fhir_adapter.store.values import reference_target, reference_values

VERSIONS = ("R4", "R5")
NOW = "2026-11-25T00:00:00Z"


# -- the reference ------------------------------------------------------------------------

def ref_children(focus: list[Node], name: str, version: str) -> list[Node]:
    out: list[Node] = []
    for node in focus:
        value = node.value
        if not isinstance(value, dict):
            continue
        types = property_types(version, node.type) if node.type else {}  # type: ignore[arg-type]
        items: list[tuple[Any, str | None]] = []
        if name in value:
            items.append((value[name], types.get(name)))
        elif name not in types:  # an element of its own is not a choice (`description`)
            for key, item in value.items():
                if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
                    suffix = key[len(name):]
                    guess = suffix if suffix in _COMPLEX else suffix[0].lower() + suffix[1:]
                    items.append((item, types.get(key) or guess))
        for item, type_ in items:
            for v in item if isinstance(item, list) else [item]:
                if v is not None:
                    out.append(Node(v, type_))
    return out


def truth(nodes: list[Node]) -> bool | None:
    if len(nodes) == 1 and isinstance(nodes[0].value, bool):
        return nodes[0].value
    return None if not nodes else True


def ref_eval(ast: Ast, focus: list[Node], root: Node, version: str) -> list[Node]:
    def ev(sub: Ast, on: list[Node]) -> list[Node]:
        return ref_eval(sub, on, root, version)

    tag = ast[0]
    if tag == "lit":
        return [ast[1]]
    if tag in ("path", "child"):
        names = ast[1] if tag == "child" else ast[2]
        if tag == "child":
            nodes = focus
        elif ast[1] in ("Resource", "DomainResource") or ast[1] == root.type:
            nodes = [root]
        elif ast[1][:1].isupper():
            return []
        else:
            nodes = ref_children(focus, ast[1], version)
        for name in names:
            nodes = ref_children(nodes, name, version)
        return nodes
    if tag == "chain":
        return ev(ast[2], ev(ast[1], focus))
    if tag == "union":
        return [n for part in ast[1] for n in ev(part, focus)]
    if tag == "and":
        a, b = truth(ev(ast[1], focus)), truth(ev(ast[2], focus))
        if a is False or b is False:
            return [Node(False, "boolean")]
        return [Node(True, "boolean")] if a and b else []
    if tag == "eq":
        a, b = ev(ast[1], focus), ev(ast[2], focus)
        if not a or not b:
            return []
        return [Node(([n.value for n in a] == [n.value for n in b]) != ast[3], "boolean")]
    if tag == "as":
        return [n for n in ev(ast[1], focus) if type_matches(n.type, ast[2])]
    if tag == "is":
        nodes = ev(ast[1], focus)
        return [Node(type_matches(nodes[0].type, ast[2]), "boolean")] if len(nodes) == 1 else []
    name, args, raw = ast[1], ast[2], ast[3]
    if name == "where":
        return [n for n in focus if truth(ev(args[0], [n])) is True]
    if name == "exists":
        return [Node(bool(focus), "boolean")]
    if name == "first":
        return focus[:1]
    if name in ("ofType", "as"):
        return [n for n in focus if type_matches(n.type, raw[0])]
    if name == "resolve":
        out = []
        for n in focus:
            target = reference_target(n.value) if isinstance(n.value, dict) else None
            if target and target[0]:
                out.append(Node({"resourceType": target[0]}, target[0]))
        return out
    assert name == "extension"
    wanted = [n.value for n in ev(args[0], focus)]
    return [n for n in ref_children(focus, "extension", version)
            if isinstance(n.value, dict) and n.value.get("url") in wanted]


def reference_index_rows(resource: dict[str, Any], version: str) -> dict[str, list[dict]]:
    rtype = resource["resourceType"]
    base = {"res_type": rtype, "res_id": resource["id"], "fhir_version": version}
    root = Node(resource, rtype)
    rows: dict[str, list[dict]] = {table: [] for table in EXTRACTORS}
    seen: set[tuple] = set()

    def add(table: str, key: dict[str, Any], nodes: list[Node], targets: tuple = ()) -> None:
        columns, extract = EXTRACTORS[table]
        for node in nodes:
            for values in extract(node):
                if table == "reference" and values[0] is None and values[1] and len(targets) == 1:
                    values = (targets[0], *values[1:])
                marker = (table, key["param"], key["grp"], *values)
                if marker not in seen:
                    seen.add(marker)
                    rows[table].append({**key, **dict(zip(columns, values, strict=True))})

    for param in search_params(version, rtype).values():  # type: ignore[arg-type]
        if param.code in UNINDEXED:  # answered from the resources table
            continue
        nodes = ref_eval(_parse(param.expression), [root], root, version)
        if param.type != "composite":
            add(TABLE_OF[param.type], {**base, "param": param.code, "grp": 0}, nodes,
                param.targets)
            if param.type == "reference":  # Reference.identifier, for :identifier
                idents = [Node(n.value["identifier"], "Identifier") for n in nodes
                          if isinstance(n.value, dict)
                          and isinstance(n.value.get("identifier"), dict)
                          and (n.value["identifier"].get("system")
                               or n.value["identifier"].get("value"))]
                add("token", {**base, "param": f"{param.code}:identifier", "grp": 0}, idents)
            continue
        for grp, item in enumerate(nodes, start=1):
            for n, component in enumerate(param.components):
                if component.type in TABLE_OF:
                    add(TABLE_OF[component.type], {**base, "param": f"{param.code}${n}",
                                                   "grp": grp},
                        ref_eval(_parse(component.expression), [item], root, version))
    return rows


def outcome(index: Any, resource: dict[str, Any], version: str) -> Any:
    try:
        return index(resource, version)
    except Exception as exc:  # noqa: BLE001 (the same failure is the expected outcome)
        return ("raised", type(exc).__name__)


def assert_same(resource: dict[str, Any], version: str) -> None:
    expected = outcome(reference_index_rows, resource, version)
    assert outcome(index_rows, resource, version) == expected, json.dumps(resource)[:2000]
    if isinstance(expected, dict):  # index_tuples: the same rows, as tuples
        assert {t: [dict(zip(COLUMNS[t], r, strict=True)) for r in found]
                for t, found in index_tuples(resource, version).items()} == expected  # type: ignore


# -- the inputs ---------------------------------------------------------------------------

def with_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return canonical.with_meta(resource, resource.get("id") or "no-id", 1, NOW)


def official_examples() -> list[tuple[str, dict[str, Any]]]:
    folder = FIXTURES / "fhir" / "examples"
    return [(version, json.loads(path.read_text("utf-8")))
            for version in VERSIONS
            for path in sorted((folder / version.lower()).glob("*.json"))]


def mapped(version: str, tmp: Path) -> Iterator[dict[str, Any]]:
    """Our examples, ConceptMaps and 150 generated AdverseEvents mapped in `version`."""
    from benchmarks.generate import write_ae_csv

    examples = ROOT / "examples"
    yield from producer("study")([examples / "NCT05003921.json"], version)  # type: ignore
    yield from producer("enrollments")(
        [examples / "NCT05003921.enrollments.csv"], version, study="NCT05003921")  # type: ignore
    yield from producer("adverse-events")(
        [examples / "NCT05003921.adverse-events.csv"], version)  # type: ignore
    generated = write_ae_csv(tmp / "ae.csv", 150)
    yield from producer("adverse-events")(
        [generated], version, study="FHIRBENCH01", intervention="Xanomeline")  # type: ignore
    for path in sorted((ROOT / "mappings").glob("*.json")):
        yield json.loads(path.read_text("utf-8"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("indexing")
    found = [(v, with_meta(r)) for v in VERSIONS for r in mapped(v, tmp)]
    if FIXTURES.is_dir():
        found += [(v, with_meta(r)) for v, r in official_examples()]
    return found


# -- the tests ----------------------------------------------------------------------------

def test_the_corpus_covers_the_served_types(corpus: list[tuple[str, dict[str, Any]]]) -> None:
    served = {r["resourceType"] for _, r in corpus} & set(RESOURCE_TYPES)
    assert {"ResearchStudy", "ResearchSubject", "AdverseEvent", "Patient", "Organization",
            "Location", "Group", "ConceptMap", "Medication"} <= served


def test_official_examples_index_as_the_reference() -> None:
    examples = official_examples()
    if not examples:
        pytest.skip(f"official examples not present under {FIXTURES}")
    for version, resource in examples:
        assert_same(with_meta(resource), version)


def test_mapped_resources_index_as_the_reference(
        corpus: list[tuple[str, dict[str, Any]]]) -> None:
    for version, resource in corpus:
        assert_same(resource, version)


def test_each_resource_in_the_other_version_too(
        corpus: list[tuple[str, dict[str, Any]]]) -> None:
    """A client may store an R4-shaped resource as R5 and the reverse: other skips, other
    choice elements, unknown properties."""
    for version, resource in corpus:
        assert_same(resource, "R5" if version == "R4" else "R4")


SCALARS = ["", "x", "Patient/1", "1", "#c", "http://h/fhir/Group/2/_history/3", "urn:uuid:9",
           "2020", "2020-02", "2021-13-01", "2020-01-01T10:00:00+02:00", "not a date", 0, 1,
           2.5, True, False, None, "Émile  Zola", "a|b"]
REFERENCES = ([{"reference": s} for s in SCALARS]
              + [{"reference": "1", "type": t} for t in ("", "Patient", 3)]
              + [{"reference": "nope nope", "type": t} for t in ("", "Group")]
              + [{"type": "Group"}, {"identifier": {"value": "x"}}])
SUFFIXES = ["Reference", "DateTime", "Period", "CodeableConcept", "Foo", "X", "string"]


def places(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        yield from places(item, (*path, key))


def mutate(resource: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """1-4 random edits anywhere but resourceType and id."""
    out = copy.deepcopy(resource)
    for _ in range(rnd.randint(1, 4)):
        where = [p for p in places(out) if p and p[0] not in ("resourceType", "id")]
        if not where:
            break
        path = rnd.choice(where)
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        key, current, edit = path[-1], parent[path[-1]], rnd.randrange(8)
        if edit == 0 and isinstance(parent, dict):
            del parent[key]
        elif edit == 1:
            parent[key] = rnd.choice(SCALARS)
        elif edit == 2:
            parent[key] = [current, rnd.choice(SCALARS)]
        elif edit == 3 and isinstance(current, list) and current:
            parent[key] = current[0]
        elif edit == 4 and isinstance(parent, dict):  # a choice-like key beside or instead
            parent[key + rnd.choice(SUFFIXES)] = copy.deepcopy(current)
            if rnd.random() < 0.5:
                del parent[key]
        elif edit == 5:
            parent[key] = copy.deepcopy(rnd.choice(REFERENCES))
        elif edit == 6:
            parent[key] = {}
        else:
            parent[key] = copy.deepcopy(rnd.sample(REFERENCES, 2))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_mutated_resources_index_as_the_reference(
        corpus: list[tuple[str, dict[str, Any]]], seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(400):
        version, resource = rnd.choice(corpus)
        assert_same(mutate(resource, rnd), version)


HANDMADE = [  # shapes the inputs above rarely produce
    ("R5", {"resourceType": "AdverseEvent", "id": "a", "occurrencePeriod": {"start": "2020"},
            "occurrenceDateTime": "2021-02-03", "occurrenceTiming": {"event": ["2022"]},
            "subject": {"reference": "Group/g"}, "subjectX": {"reference": "Patient/p"},
            "metaData": {"profile": ["http://x"]}}),
    ("R4", {"resourceType": "Group", "id": "g", "characteristic": [
        {"code": {"text": "c"}, "valueBoolean": False},
        {"code": {"coding": [{"code": "k"}]}, "valueCodeableConcept": {"text": "v"},
         "valueReference": {"reference": "Patient/p"}}]}),
    ("R5", {"resourceType": "Group", "id": "g", "characteristic": [
        {"code": {"text": "c"}, "valueCodeableConcept": {"text": "v"}, "valueBoolean": True}]}),
    ("R4", {"resourceType": "Patient", "id": "p", "deceasedBoolean": False,
            "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "1"}],
            "name": [{"family": "Zola", "given": ["Émile", "É."]}]}),
    ("R5", {"resourceType": "Patient", "id": "p", "deceasedDateTime": "2020-01-01",
            "link": [{"other": {"reference": "Patient/q"}}]}),
    ("R4", {"resourceType": "Patient", "id": "p", "meta": {"profile": ["http://x"],
                                                           "tag": [{"code": "t"}]}}),
    ("R5", {"resourceType": "Basic", "id": "b", "code": {"text": "not served"}}),
]


@pytest.mark.parametrize("version,resource", HANDMADE)
def test_handmade_resources_index_as_the_reference(version: str,
                                                   resource: dict[str, Any]) -> None:
    assert_same(with_meta(resource), version)
    assert_same(with_meta(resource), "R4" if version == "R5" else "R5")


@pytest.mark.parametrize("ref", REFERENCES)
def test_reference_values_agree_with_reference_target(ref: dict[str, Any]) -> None:
    literal = ref.get("reference")
    expected = ([] if not isinstance(literal, str) or literal.startswith("#")
                else [(*(reference_target(ref) or (None, None)), literal)])
    if expected and expected[0][1] and literal != expected[0][1] and "://" not in literal \
            and not literal.startswith("urn:"):
        expected = [(*expected[0][:2], None)]  # "Type/id": no url, type and id say it all
    assert reference_values(Node(ref, "Reference")) == expected


def test_relative_references_are_indexed_without_a_url() -> None:
    def values(literal: str) -> list[tuple]:
        return reference_values(Node({"reference": literal}, "Reference"))

    assert values("Patient/p1") == [("Patient", "p1", None)]
    assert values("Patient/p1/_history/2") == [("Patient", "p1", None)]
    assert values("http://x.org/fhir/Patient/p1") == [
        ("Patient", "p1", "http://x.org/fhir/Patient/p1")]
    assert values("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0") == [
        (None, None, "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0")]
    assert values("p1") == [(None, "p1", "p1")]


@pytest.mark.parametrize("expression,paths", [
    ("AdverseEvent.subject", {("subject",)}),
    ("Resource.meta.profile", {("meta", "profile")}),
    ("(AdverseEvent.suspectEntity.instance as Reference)", {("suspectEntity", "instance")}),
    ("AdverseEvent.occurrence.ofType(dateTime) | AdverseEvent.occurrence.ofType(Period)",
     {("occurrence",)}),
    ("AdverseEvent.subject.where(resolve() is Patient)", {("subject",)}),
    ("Patient.name", set()),  # another type: never anything
    ("AdverseEvent.status.exists()", None),  # false on an absent status: always evaluated
    ("AdverseEvent.status.exists() and AdverseEvent.status != 'x'", None),
    ("AdverseEvent", None),
])
def test_root_paths(expression: str, paths: set | None) -> None:
    assert root_paths(expression, "AdverseEvent") == (None if paths is None
                                                        else frozenset(paths))
