"""Bundles assembled as bytes: the envelope is a small dict serialised with orjson, the
resources are spliced in as stored. No model is built per request ("serve bytes")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..ids import dashed
from ..store.canonical import dumps
from .hooks import uuid4_hex


def now_instant() -> str:
    """The current time as a FHIR instant in UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(full_url: str | None, resource: bytes | None, extra: dict[str, Any] | None = None
          ) -> bytes:
    """One Bundle.entry: fullUrl, resource (stored bytes), then search/request/response."""
    parts = []
    if full_url:
        parts.append(b'"fullUrl":' + dumps(full_url))
    if resource is not None:
        parts.append(b'"resource":' + resource)
    for key, value in (extra or {}).items():
        parts.append(dumps(key) + b":" + dumps(value))
    return b"{" + b",".join(parts) + b"}"


def assemble(bundle_type: str, entries: Iterable[bytes], *, total: int | None = None,
             links: list[dict[str, str]] | None = None) -> bytes:
    """A whole Bundle: id, meta.lastUpdated, type, total, link, then the entries."""
    head: dict[str, Any] = {"resourceType": "Bundle",
                            "id": dashed(uuid4_hex()),  # str(uuid.uuid4()), cheaper
                            "meta": {"lastUpdated": now_instant()}, "type": bundle_type}
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = links
    body = b",".join(entries)
    if not body:
        return dumps(head)
    return b"".join((dumps(head)[:-1], b',"entry":[', body, b"]}"))  # one copy of the body
