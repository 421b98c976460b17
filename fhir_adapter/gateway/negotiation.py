"""Content negotiation (R4 http.html "Content Types and encodings", "FHIR Version parameter"):
which media type and which FHIR version a request speaks, and how its body is read.

JSON only: `application/fhir+json` and `application/json` (with or without charset and the
`fhirVersion` parameter); `*/*`, `application/*` or no Accept at all mean JSON; `_format`
overrides Accept. XML, Turtle and HTML are answered with 406 (Accept) or 415 (Content-Type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Request
from werkzeug.http import parse_options_header

from ..errors import BadRequest, NotAcceptable, UnsupportedMediaType
from ..store.canonical import TooDeep, loads
from ..validation import FhirVersion
from .limits import LimitExceeded, check_json, limit

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
_JSON_TYPES = (FHIR_JSON, JSON)
_FORMAT_ALIASES = {"json": FHIR_JSON, "application/json": JSON, "application/fhir+json": FHIR_JSON,
                   "application/json+fhir": FHIR_JSON}  # the DSTU2 spelling, still seen
FORM = "application/x-www-form-urlencoded"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# fhirVersion parameter values (major.minor, R4 http.html#version-parameter) -> our versions
_VERSION_PARAM = {"4.0": "R4", "4.0.1": "R4", "5.0": "R5", "5.0.0": "R5"}
VERSION_PARAM_OUT = {"R4": "4.0", "R5": "5.0"}


@dataclass(frozen=True)
class Negotiated:
    """What the request asked for: response media type and (if stated) FHIR version."""

    mime: str
    version: FhirVersion | None


def _media_ranges(header: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for part in header.split(","):
        if not part.strip():
            continue
        mime, params = parse_options_header(part)
        params = {k.lower(): v for k, v in params.items()}
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        out.append((mime.lower(), params, q))
    return out


def _version_param(params: dict[str, str], where: str) -> FhirVersion | None:
    value = params.get("fhirversion")
    if value is None:
        return None
    if value.strip() not in _VERSION_PARAM:
        raise NotAcceptable(f"fhirVersion={value} in {where} is not served here "
                            "(this server speaks 4.0 and 5.0)")
    return _VERSION_PARAM[value.strip()]  # type: ignore[return-value]


def negotiate(request: Request) -> Negotiated:
    """The response media type and requested version from `_format` or Accept; 406 if the
    client accepts nothing we can send."""
    args = request.args
    fmt = args.get("_format") if args else None  # a miss on a MultiDict raises inside
    if fmt:
        mime, params = parse_options_header(fmt.strip())
        mime = _FORMAT_ALIASES.get(mime.lower())
        if mime is None:
            raise NotAcceptable(f"_format={fmt} is not supported: this server speaks JSON only "
                                "(_format=json or application/fhir+json)")
        return Negotiated(mime, _version_param({k.lower(): v for k, v in params.items()},
                                               "_format"))
    return accepted(request.headers.get("Accept", ""))


def accepted(header: str) -> Negotiated:
    """What an Accept header asks for (406 if nothing we send); remembered per header."""
    header = header.strip()
    if not header:
        return _DEFAULT
    found = _ACCEPTED.get(header)
    if found is None:
        found = _accept(header)
        if len(_ACCEPTED) >= 256:  # bounded: the header is the client's to choose
            _ACCEPTED.clear()
        _ACCEPTED[header] = found
    return found


_DEFAULT = Negotiated(FHIR_JSON, None)
# Accept header -> answer: clients send the same few headers, and parsing one is a large
# share of a read's time. Headers we refuse (406) are not kept: _accept raises.
_ACCEPTED: dict[str, Negotiated] = {}


def _accept(header: str) -> Negotiated:
    ranges = sorted(_media_ranges(header), key=lambda r: -r[2])
    for mime, params, q in ranges:
        if q <= 0:
            continue
        if mime in _JSON_TYPES:
            return Negotiated(mime, _version_param(params, "Accept"))
        if mime in ("*/*", "application/*"):
            return Negotiated(FHIR_JSON, _version_param(params, "Accept"))
    raise NotAcceptable(f"cannot produce any of Accept: {header}; this server sends "
                        "application/fhir+json or application/json")


def content_type(request: Request) -> tuple[str, dict[str, str]]:
    """The request body's media type (lower case) and its parameters ('' when absent)."""
    header = request.headers.get("Content-Type")
    if not header:
        return "", {}
    mime, params = parse_options_header(header)
    return mime.lower(), {k.lower(): v for k, v in params.items()}


def body_version(request: Request) -> FhirVersion | None:
    """The fhirVersion a JSON request body declares in its Content-Type, if any."""
    mime, params = content_type(request)
    if mime not in _JSON_TYPES:
        return None
    try:
        return _version_param(params, "Content-Type")
    except NotAcceptable as exc:
        raise UnsupportedMediaType(exc.message) from exc


def read_json(request: Request, allowed: tuple[str, ...] = _JSON_TYPES) -> Any:
    """The request body as JSON (decimals keep their exact text); 415 for another media type,
    400 for a body that is not JSON. A missing Content-Type is read as JSON."""
    mime, _ = content_type(request)
    if mime and mime not in allowed:
        raise UnsupportedMediaType(f"Content-Type {mime} is not supported here; send "
                                   + " or ".join(allowed))
    data = request.get_data(cache=True)
    if not data.strip():
        raise BadRequest("the request has no body")
    try:
        parsed = loads(data)
    except TooDeep:
        raise LimitExceeded("MAX_DEPTH", limit("MAX_DEPTH"), "the body nests objects and "
                            "arrays deeper than the parser can follow", 413) from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    check_json(parsed)
    return parsed
