"""Input limits: what one request or one input file may ask of the server, each a named
setting (FHIR_ADAPTER_<NAME>) whose breach is refused with a message naming it: a 4xx
OperationOutcome in the gateway (gateway/limits.py), an input error naming file and row in
the pipeline (pipeline/bundles.py). A base module, so that every layer reads the same
defaults and the same environment.

    MAX_DEPTH          100      nesting of a JSON body or resource (objects and arrays)
    MAX_STRING_LENGTH  1048576  characters in one JSON string or one search value
    MAX_PARAMS         100      parameters of one search (or conditional criteria)
    MAX_OFFSET         1000000  _offset of a search page
    MAX_ENTRIES        10000    entries of a transaction or batch Bundle
    MAX_URL_LENGTH     8000     bytes of path plus query string
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

LIMITS: dict[str, int] = {
    "MAX_DEPTH": 100,
    "MAX_STRING_LENGTH": 1024 * 1024,
    "MAX_PARAMS": 100,
    "MAX_OFFSET": 1_000_000,
    "MAX_ENTRIES": 10_000,
    "MAX_URL_LENGTH": 8000,
}


def setting(name: str, conf: Mapping[str, Any] | None = None) -> int:
    """The limit `name`: from `conf` (an app's settings) when it has it, else from
    FHIR_ADAPTER_<name> in the environment, else its default."""
    value: Any = conf.get(name) if conf is not None else None
    if value is None:
        value = os.environ.get(f"FHIR_ADAPTER_{name}") or LIMITS[name]
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"FHIR_ADAPTER_{name} must be a whole number, not {value!r}") from exc
