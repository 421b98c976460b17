"""Canonical JSON: what a client wrote is what it reads back.

`loads` keeps every decimal as written (`1.50` stays `1.50`, not `1.5`) by parsing numbers
with a fraction or exponent into `Decimal` text-preserving floats, which validators accept as
floats and `dumps` writes back verbatim. Strings (instants with `Z`, extensions, element
order) pass through untouched; integers of any size are written exactly. The gateway and
`load bundle` parse request bodies with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson


class JsonDecimal(float):
    """A float that remembers the text it was parsed from (for lossless re-serialisation)."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> JsonDecimal:
        value = super().__new__(cls, text)
        value.text = text
        return value

    def __repr__(self) -> str:
        return self.text


class TooDeep(ValueError):
    """JSON nested deeper than the parser's stack allows (~1,000 levels)."""


def too_deep(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays deeper than `limit` (iterative: what would
    exhaust the stack of recursive code later, validation and serialisation, is found
    without using it)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping decimal text (NaN and Infinity are errors, as in JSON proper)."""
    try:
        return json.loads(data, parse_float=JsonDecimal, parse_constant=_reject_constant)
    except RecursionError:  # the parser recurses per level: ~1,000 levels exhaust the stack
        raise TooDeep("JSON nested too deep to parse") from None


def _default(value: Any) -> Any:
    if isinstance(value, JsonDecimal):
        return orjson.Fragment(value.text)
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, keys in the order given, decimals and integers as parsed."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError as exc:
        # orjson refuses integers beyond 64 bits (a FHIR decimal may be one): only such
        # documents take the second, slower pass, which writes those integers as text.
        try:
            wide = _wide_integers(value)
        except RecursionError:  # circular, or too deep to walk: orjson's error stands
            raise exc from None
        if wide is value:
            raise
        return orjson.dumps(wide, default=_default)


_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what orjson writes itself


def _wide_integers(value: Any) -> Any:
    """`value` with integers beyond orjson's range as exact fragments; `value` itself (the
    same object) when it holds none."""
    if isinstance(value, (dict, list, tuple)):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        out = None
        for at, item in pairs:
            wide = _wide_integers(item)
            if wide is not item:
                if out is None:
                    out = dict(value) if isinstance(value, dict) else list(value)
                out[at] = wide
        return value if out is None else out
    if isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX:  # bools are in range
        # str() refuses integers over sys.get_int_max_str_digits() (4300) digits, as
        # json.loads does: ValueError
        return orjson.Fragment(str(int(value)))
    return value


def without_version_meta(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource minus meta.versionId / meta.lastUpdated (the store owns those)."""
    out = dict(resource)
    meta = out.get("meta")
    if isinstance(meta, dict):
        rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        if rest:
            out["meta"] = rest
        else:
            del out["meta"]
    return out


def with_meta(resource: Mapping[str, Any], rid: str, version_id: int,
              last_updated: str) -> dict[str, Any]:
    """The resource with its id and meta.versionId/lastUpdated, in FHIR element order:
    resourceType, id, meta (versionId, lastUpdated, then the client's meta), the rest."""
    meta = {"versionId": str(version_id), "lastUpdated": last_updated,
            **{k: v for k, v in (resource.get("meta") or {}).items()
               if k not in ("versionId", "lastUpdated")}}
    out: dict[str, Any] = {"resourceType": resource["resourceType"], "id": rid, "meta": meta}
    out.update((k, v) for k, v in resource.items() if k not in ("resourceType", "id", "meta"))
    return out


def with_meta_bytes(plain: bytes, resource: Mapping[str, Any], version_id: int,
                    last_updated: str) -> bytes:
    """dumps(with_meta(resource, ...)) from `plain` = dumps(resource), without serialising
    again: for a resource without meta whose first keys are resourceType and id (as the
    store prepares them), the meta goes in after the id; otherwise the long way."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if "meta" not in resource and isinstance(rtype, str) and isinstance(rid, str):
        head = _type_head(rtype) + orjson.dumps(rid)
        if plain.startswith(head) and plain[len(head):len(head) + 1] in (b",", b"}"):
            return head + _meta_member(version_id, last_updated) + plain[len(head):]
    return dumps(with_meta(resource, str(rid), version_id, last_updated))


# A bulk load splices the same few types and the same meta (one instant per batch) into
# every body: their bytes are made once.
@lru_cache(maxsize=256)
def _type_head(rtype: str) -> bytes:
    return b'{"resourceType":' + orjson.dumps(rtype) + b',"id":'


@lru_cache(maxsize=64)
def _meta_member(version_id: int, last_updated: str) -> bytes:
    return b',"meta":' + orjson.dumps({"versionId": str(version_id),
                                        "lastUpdated": last_updated})


def content_hash(bodies: Mapping[str, bytes]) -> str:
    """One digest over every representation: equal digests = nothing to write."""
    digest = hashlib.sha256()
    for version in sorted(bodies):
        digest.update(version.encode() + b"\0" + bodies[version] + b"\0")
    return digest.hexdigest()
