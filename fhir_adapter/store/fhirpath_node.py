"""The item of a FHIRPath collection, apart from the evaluator so that the value extractors
(values.py) and the evaluator (fhirpath_eval.py, which resolves references with values.py)
share it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Node:
    """One item of a FHIRPath collection: a JSON value and its FHIR type (None if unknown).
    Not frozen: a frozen dataclass costs three times as much to build, and indexing builds
    one per element it walks. Treat it as immutable."""

    value: Any
    type: str | None
