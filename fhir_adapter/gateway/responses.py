"""Building FHIR responses from stored bytes: headers (ETag, Last-Modified, Location), media
type, OperationOutcomes."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

from flask import Response

from ..errors import BadRequest, Issue, NotAcceptable
from ..store.base import Stored
from ..store.canonical import dumps
from ..validation import FhirVersion
from .negotiation import VERSION_PARAM_OUT
from .versions import why_not


def outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource holding `issues`."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def outcome_bytes(issues: list[Issue]) -> bytes:
    """The same, serialised."""
    return dumps(outcome(issues))


def info(message: str) -> bytes:
    """An informational OperationOutcome (Prefer: return=OperationOutcome, deletes)."""
    return outcome_bytes([Issue("information", "informational", message)])


@lru_cache(maxsize=4096)  # hot resources are read again and again: parse their instant once
def http_date(instant: str) -> str:
    """FHIR instant (2026-11-25T13:00:00.123Z) -> RFC 9110 HTTP-date."""
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return format_datetime(moment, usegmt=True)


def etag(version_id: int | str) -> str:
    """Weak ETag of a version, as R4 http.html spells it: W/"3"."""
    return f'W/"{version_id}"'


def parse_etag(value: str | None) -> int | None:
    """W/"3", "3" or 3 -> 3 (fhirpy sends the bare versionId); None when absent."""
    if value is None or not value.strip():
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit() and len(text) < 19):  # a BIGINT's digits
        raise BadRequest(f"not a version ETag: {value!r} (expected W/\"<versionId>\")")
    return int(text)


def body_in(stored: Stored, version: FhirVersion) -> bytes:
    """The stored bytes in `version`, or 406 when the resource has no such representation."""
    try:
        return stored.json(version)
    except KeyError:
        written = " and ".join(sorted(stored.body)) or "no FHIR version"
        why, element = why_not(stored.body[min(stored.body)], min(stored.body), version) \
            if stored.body else ("it has no body", None)  # type: ignore[arg-type]
        message = (f"{stored.resource_type}/{stored.id} is not representable in FHIR "
                   f"{version}: it exists in {written} only ({why}); request it with "
                   f"fhirVersion={VERSION_PARAM_OUT[min(stored.body, default='R4')]}")
        raise NotAcceptable(message, issues=[Issue("error", NotAcceptable.code, message,
                                                   element)]) from None


def version_headers(stored: Stored) -> dict[str, str]:
    """ETag and Last-Modified of a stored version."""
    return {"ETag": etag(stored.version_id), "Last-Modified": http_date(stored.last_updated)}


def location(base: str, stored: Stored) -> str:
    """[base]/Type/id/_history/vid."""
    return f"{base}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"


def fhir_response(body: bytes | None, status: int = 200, mime: str = "application/fhir+json",
                  version: FhirVersion = "R4", headers: dict[str, str] | None = None) -> Response:
    """A response with the FHIR media type (and its fhirVersion parameter) and headers."""
    # Headers given up front (no default text/html Content-Type set and then replaced; no
    # scan for an existing value per header): `headers` never names Content-Type.
    extra = list(headers.items()) if headers else None
    if body is None:
        return Response(b"", status=status, headers=extra)
    return Response(body, status=status, headers=extra,
                    content_type=CONTENT_TYPES[mime, version])


class _ContentTypes(dict[tuple[str, str], str]):
    """(media type, FHIR version) -> Content-Type header value, built on first use."""

    def __missing__(self, key: tuple[str, str]) -> str:
        mime, version = key
        value = self[key] = f"{mime}; fhirVersion={VERSION_PARAM_OUT[version]}; charset=utf-8"
        return value


CONTENT_TYPES = _ContentTypes()
