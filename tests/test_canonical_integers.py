"""canonical.dumps writes integers of any size exactly (orjson alone stops at 64 bits)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_adapter.store.canonical import JsonDecimal, dumps, loads

BIG = st.one_of(st.integers(min_value=1 << 64), st.integers(max_value=-(1 << 63) - 1))
# decimals as a client writes them: loads keeps their text, dumps writes it back
DECIMALS = st.from_regex(r"-?(0|[1-9][0-9]{0,30})\.[0-9]{1,20}([eE][+-]?[0-9]{1,2})?",
                         fullmatch=True).map(JsonDecimal)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), BIG, st.text(), DECIMALS)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)), max_leaves=20)


@pytest.mark.parametrize("number", [1 << 64, -(1 << 63) - 1, 10 ** 40, -(10 ** 40)])
def test_integers_beyond_64_bits_are_written_exactly(number: int) -> None:
    resource = {"resourceType": "Observation", "valueQuantity": {"value": number},
                "component": [{"valueInteger": 1}, {"valueDecimal": JsonDecimal("1.50")}]}
    out = dumps(resource)
    assert out == (b'{"resourceType":"Observation","valueQuantity":{"value":'
                   + str(number).encode()
                   + b'},"component":[{"valueInteger":1},{"valueDecimal":1.50}]}')


def test_the_edges_of_64_bits_take_the_common_path() -> None:
    assert dumps([(1 << 64) - 1, -(1 << 63), True]) == orjson.dumps(
        [(1 << 64) - 1, -(1 << 63), True])


def test_other_type_errors_still_raise() -> None:
    with pytest.raises(TypeError):
        dumps({"value": 1 << 70, "bad": object()})
    with pytest.raises(TypeError):
        dumps({"bad": {1, 2}})
    circular: list[Any] = []
    circular.append(circular)
    with pytest.raises(TypeError):
        dumps(circular)


def test_the_input_is_not_changed() -> None:
    value = {"a": [1 << 80, (5, 1 << 90)], "b": "x"}
    dumps(value)
    assert value == {"a": [1 << 80, (5, 1 << 90)], "b": "x"}


@given(JSON)
def test_round_trip_with_loads(value: Any) -> None:
    text = dumps(value)
    assert dumps(loads(text)) == text
    # the standard library agrees on every value (decimal text aside, which it cannot keep)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert loads(text) == value
