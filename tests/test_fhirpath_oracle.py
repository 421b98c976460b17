"""Our FHIRPath evaluator (store/fhirpath*.py) against fhirpathpy, an independent
implementation, as the oracle: every SearchParameter expression we index, on every resource
we produce (goldens, examples/ mapped) and the official examples, in both versions, gives
the same values.

Where fhirpathpy cannot run an expression as written, the test asks it an equivalent one,
each for a stated reason (see `for_fhirpathpy`):
- a leading base type (`Resource.id`, `DomainResource.text`): FHIRPath matches the root by
  its type or a base of it; fhirpathpy compares the name with resourceType, so it is asked
  with the concrete type.
- `resolve()`: fhirpathpy has none; the test supplies one that, like ours (no store at hand
  while indexing), knows a referenced resource by its literal reference only, and, as
  fhirpathpy cannot type what a user function returns, `resolve() is T` is asked as
  `resolve().resourceType = 'T'`.
- `x as T` over several items: FHIRPath (and fhirpathpy) call that an error; the R4
  SearchParameters use it on repeating elements all the same (R5 rewrote them to ofType) and
  servers read it as `x.ofType(T)`, as ours does. fhirpathpy is asked the ofType form when it
  refuses the original.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from fhir_corpus import corpus

fhirpathpy = pytest.importorskip("fhirpathpy")  # in the [test] extra
from fhirpathpy.models import models  # noqa: E402 (after the import check)

from fhir_adapter.store.fhirpath import evaluate  # noqa: E402
from fhir_adapter.store.searchparams import search_params  # noqa: E402

_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def _resolve(inputs: list[Any]) -> list[dict[str, str]]:
    """A stand-in for each literally referenced resource: its type, nothing else."""
    out = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else None
        found = _LITERAL.search(ref) if isinstance(ref, str) else None
        if found:
            out.append({"resourceType": found.group(1)})
    return out


OPTIONS = {"userInvocationTable": {"resolve": {"fn": _resolve, "arity": {0: []}}}}


def for_fhirpathpy(expression: str, resource_type: str) -> str:
    """`expression` as fhirpathpy can run it (the module docstring says why each change)."""
    text = re.sub(r"\b(Resource|DomainResource)\.", f"{resource_type}.", expression)
    return re.sub(r"resolve\(\) is (\w+)", r"resolve().resourceType = '\1'", text)


def _as_of_type(expression: str) -> str:
    """`(X as T)` -> `X.ofType(T)` and `X as T` -> `X.ofType(T)`."""
    text = re.sub(r"\(([\w.]+) as (\w+)\)", r"\1.ofType(\2)", expression)
    return re.sub(r"([\w.]+) as (\w+)", r"\1.ofType(\2)", text)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _theirs(resource: dict[str, Any], expression: str, version: str) -> list[Any]:
    model = models[version.lower()]
    asked = for_fhirpathpy(expression, resource["resourceType"])
    try:
        return fhirpathpy.evaluate(resource, asked, {}, model, OPTIONS)
    except ValueError as exc:
        if "Expected singleton on left side of 'as'" not in str(exc):
            raise
        return fhirpathpy.evaluate(resource, _as_of_type(asked), {}, model, OPTIONS)


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_search_expression_gives_what_fhirpathpy_gives(version: str) -> None:
    resources = [(v, r) for v, r in corpus() if v == version]
    evaluated, found, expressions = 0, 0, set()
    for _, resource in resources:
        for code, param in search_params(version, resource["resourceType"]).items():
            ours = Counter(_key(n.value) for n in evaluate(param.expression, resource, version))
            theirs = Counter(_key(v) for v in _theirs(resource, param.expression, version))
            assert ours == theirs, (resource["resourceType"], resource.get("id"), code,
                                    param.expression)
            evaluated += 1
            found += bool(ours)
            expressions.add(param.expression)
    # broad enough to mean something: many expressions, most of them finding values
    assert len(resources) > 400 and len(expressions) > 60 and found > 2000, \
        (len(resources), len(expressions), found)


def test_an_element_is_not_taken_for_a_choice_of_a_shorter_name() -> None:
    # Found by the oracle: `ResearchStudy.description` matched `descriptionSummary` as if
    # `description` were a choice element (`value[x]` -> valueString).
    study = {"resourceType": "ResearchStudy", "status": "active", "descriptionSummary": "s"}
    assert evaluate("ResearchStudy.description", study, "R5") == []
    observation = {"resourceType": "Observation", "valueString": "v", "status": "final"}
    assert [n.value for n in evaluate("Observation.value", observation, "R4")] == ["v"]
