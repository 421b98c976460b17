"""The parts of a push that need no server: the writing order (types after the types they
reference; a self-referencing type parents first; cycles named), the checkpoint journal
(resumes counts, refuses another push's journal, survives a torn last line), and the
comparison that ignores what a server sets on write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_adapter.pipeline.remote.checkpoint import Checkpoint
from fhir_adapter.pipeline.remote.ordering import Plan, parents_first
from fhir_adapter.pipeline.remote.target import comparable


def _bytes(resource: dict) -> bytes:
    return json.dumps(resource, separators=(",", ":")).encode()


def test_types_follow_what_they_reference() -> None:
    plan = Plan()
    plan.add("ResearchSubject", "s", _bytes({"study": {"reference": "ResearchStudy/a"},
                                             "individual": {"reference": "Patient/p"}}))
    plan.add("ResearchStudy", "a", _bytes({"enrollment": [{"reference": "Group/g"}]}))
    plan.add("ResearchStudy", "b", _bytes({"partOf": [{"reference": "ResearchStudy/a"}]}))
    plan.add("Group", "g", _bytes({"member": [{"entity": {"reference": "Patient/p"}}]}))
    plan.add("Patient", "p", _bytes({}))
    plan.add("AdverseEvent", "e", _bytes({"subject": {"reference": "Patient/elsewhere"},
                                          "study": [{"reference": "Organization/x"}]}))
    order, cyclic = plan.type_order()
    assert cyclic == []
    assert order.index("Patient") < order.index("Group") < order.index("ResearchStudy") \
        < order.index("ResearchSubject")
    assert plan.self_referencing == {"ResearchStudy"}
    assert plan.total == 6 and plan.counts["ResearchStudy"] == 2


def test_a_cycle_between_types_is_named() -> None:
    plan = Plan()
    plan.add("Group", "g", _bytes({"characteristic": [
        {"valueReference": {"reference": "ResearchStudy/a"}}]}))
    plan.add("ResearchStudy", "a", _bytes({"enrollment": [{"reference": "Group/g"}]}))
    plan.add("Patient", "p", _bytes({}))
    order, cyclic = plan.type_order()
    assert order == ["Patient", "Group", "ResearchStudy"] and cyclic == ["Group",
                                                                          "ResearchStudy"]


def test_parents_before_children() -> None:
    items = [("c", _bytes({"partOf": [{"reference": "ResearchStudy/b"}]})),
             ("b", _bytes({"partOf": [{"reference": "ResearchStudy/a"}]})),
             ("a", _bytes({})),
             ("x", _bytes({"partOf": [{"reference": "ResearchStudy/y"}]})),
             ("y", _bytes({"partOf": [{"reference": "ResearchStudy/x"}]}))]
    order = [rid for rid, _ in parents_first(items, "ResearchStudy")]
    assert order.index("a") < order.index("b") < order.index("c")
    assert sorted(order) == ["a", "b", "c", "x", "y"]  # the x <-> y cycle broken, not lost


def test_the_journal_resumes_and_refuses_another_push(tmp_path: Path) -> None:
    path = tmp_path / "push.journal"
    first = Checkpoint(path, {"target": "http://a/fhir"})
    first.record([("Patient", "p1", "created"), ("Patient", "p2", "unchanged")])
    first.record([("Group", "g", "updated")])
    with path.open("a") as out:
        out.write('{"done": [["Patient", "p3", "cre')  # a push killed mid-write
    again = Checkpoint(path, {"target": "http://a/fhir"})
    assert again.resumed and again.done == {("Patient", "p1"), ("Patient", "p2"),
                                            ("Group", "g")}
    assert again.counts["Patient"] == {"created": 1, "unchanged": 1}
    with pytest.raises(ValueError, match="checkpoint of another push"):
        Checkpoint(path, {"target": "http://b/fhir"})
    again.remove()
    assert not path.exists()
    memory = Checkpoint(None, {"target": "x"})
    memory.record([("Patient", "p", "created")])
    assert memory.done == {("Patient", "p")} and not list(tmp_path.iterdir())


def test_comparison_ignores_server_set_meta_only() -> None:
    ours = {"resourceType": "Patient", "id": "p", "meta": {"versionId": "1",
                                                            "lastUpdated": "2026-01-01T00:00:00Z",
                                                            "profile": ["urn:p"]},
            "gender": "male"}
    theirs = dict(ours, meta={"versionId": "7", "lastUpdated": "2026-12-01T00:00:00Z",
                              "source": "#x", "profile": ["urn:p"]})
    assert comparable(ours) == comparable(theirs)
    assert comparable(ours) != comparable(dict(theirs, gender="female"))
    assert comparable(ours) != comparable(dict(theirs, meta={"profile": ["urn:q"]}))
