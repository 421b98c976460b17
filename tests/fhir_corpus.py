"""The FHIR resources tests check behaviour over: every resource of the golden files, the
mapped examples/ (both versions, through the producers `fhir-adapter load` uses) and the
official examples."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from conftest import FIXTURES, ROOT
from golden import GOLDEN

Corpus = list[tuple[str, dict[str, Any]]]


def golden_resources() -> list[tuple[str, list[dict[str, Any]]]]:
    """(version, resources) of each golden file that holds FHIR resources."""
    out = []
    for path in sorted(GOLDEN.rglob("*.expected.json")):
        version = "R5" if ".r5." in path.name else "R4"
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data = data.get("resources", [data])
        found = [r for r in data if isinstance(r, dict) and "resourceType" in r]
        if found:
            out.append((version, found))
    return out


@cache
def mapped_examples() -> Corpus:
    """examples/ mapped to FHIR in both versions."""
    from fhir_adapter.pipeline.producers import producer

    examples = ROOT / "examples"
    inputs = [("study", examples / "NCT05003921.json"),
              ("adverse-events", examples / "NCT05003921.adverse-events.csv"),
              ("enrollments", examples / "NCT05003921.enrollments.csv"),
              ("enrollments", examples / "NCT05003921.enrollments.json")]
    return [(version, resource) for kind, path in inputs for version in ("R4", "R5")
            for resource in producer(kind)([path], version)]


def official_examples() -> Corpus:
    """The official R4 and R5 examples of tests/fixtures ([] when absent)."""
    return [(version.upper(), json.loads(path.read_text()))
            for version in ("r4", "r5")
            for path in sorted((FIXTURES / "fhir" / "examples" / version).glob("*.json"))]


def corpus() -> Corpus:
    """Every resource above, as (version, resource)."""
    out: Corpus = [(v, r) for v, found in golden_resources() for r in found]
    return out + mapped_examples() + official_examples()
