"""From FHIR values to what the search-index tables hold, and back for search values:
string normalisation, date ranges (epoch microseconds), tokens, references, quantities."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from .fhirpath_node import Node

# Open ends of a Period (no start / no end) and of a Range: beyond any real instant/value.
MIN_INSTANT, MAX_INSTANT = -(2**62), 2**62
MIN_NUMBER, MAX_NUMBER = -1e300, 1e300
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

_DATE = re.compile(  # ASCII digits only: \d would accept other scripts' digits
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})"
    r"(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")


# Indexing normalises the same codes' displays and parses the same dates over and over: the
# pure conversions below are memoised for short texts (long ones would make the caches big).
_CACHED_LENGTH, _CACHE_SIZE = 200, 8192


def normalise(text: str) -> str:
    """Case- and accent-insensitive form for string search: 'Émile  Zola' -> 'emile zola'."""
    if type(text) is str and len(text) <= _CACHED_LENGTH:
        return _normalise_cached(text)
    return _normalise(text)


def _normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(folded.casefold().split())


_normalise_cached = lru_cache(maxsize=_CACHE_SIZE)(_normalise)


def date_range(text: str) -> tuple[int, int]:
    """A FHIR date/dateTime/instant (or search value) -> (first, last) microsecond it covers,
    as epoch microseconds in UTC. Values without a time zone are taken as UTC."""
    if type(text) is str and len(text) <= _CACHED_LENGTH:
        return _date_range_cached(text)
    return _date_range(text)


def _date_range(text: str) -> tuple[int, int]:
    m = _DATE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a FHIR date/dateTime: {text!r}")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    offset = UTC
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        offset = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    micro = int((frac or "0")[:6].ljust(6, "0"))
    start = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                     int(minute or 0), int(second or 0), micro, tzinfo=offset)
    if frac or second or minute or day:
        step = (timedelta(microseconds=10 ** max(0, 6 - len(frac))) if frac
                else timedelta(seconds=1) if second
                else timedelta(minutes=1) if minute else timedelta(days=1))
        end = start + (step - _MICRO)  # not (start + step): past 9999-12-31T23:59:59.999
    else:  # a year or a month: up to the last microsecond before the next one
        y, mo = (start.year, start.month + 1) if month else (start.year + 1, 1)
        y, mo = (y + 1, 1) if mo == 13 else (y, mo)
        end = (datetime(y, mo, 1, tzinfo=offset) - _MICRO if y <= 9999
               else datetime.max.replace(tzinfo=offset))
    return (start - EPOCH) // _MICRO, (end - EPOCH) // _MICRO


_date_range_cached = lru_cache(maxsize=_CACHE_SIZE)(_date_range)


def instant_text(moment: datetime) -> str:
    """A FHIR instant in UTC with milliseconds: fixed width, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_to_instant(micros: int) -> str:
    """Epoch microseconds -> instant_text."""
    return instant_text(EPOCH + timedelta(microseconds=micros))


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def reference_target(ref: dict[str, Any]) -> tuple[str | None, str | None] | None:
    """(type, id) a Reference points at: from its literal reference, else its `type`."""
    literal = ref.get("reference")
    rtype = ref.get("type") if isinstance(ref.get("type"), str) else None
    if isinstance(literal, str) and not literal.startswith("#"):
        found = (_literal_target_cached(literal) if len(literal) <= _CACHED_LENGTH
                 else _literal_target(literal))
        if found:
            return found
        if found is not None:  # a bare id (seen in the wild): its type from `type`
            return rtype, literal
    return (rtype, None) if rtype else None


def _literal_target(literal: str) -> tuple[str, str] | tuple[()] | None:
    """(type, id) of a literal reference; () for a bare id; None for neither."""
    m = _REF.search(literal)
    if m:
        return m.group(1), m.group(2)
    return () if _ID.fullmatch(literal) else None


_literal_target_cached = lru_cache(maxsize=_CACHE_SIZE)(_literal_target)


def split_reference(value: str) -> tuple[str | None, str | None]:
    """Search value 'Patient/1', 'http://x/fhir/Patient/1' or '1' -> (type, id)."""
    m = _REF.search(value)
    if m:
        return m.group(1), m.group(2)
    return (None, value) if "/" not in value and ":" not in value else (None, None)


def _kind(node: Node) -> str | None:
    if node.type:
        return node.type
    value = node.value
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        for key, kind in (("coding", "CodeableConcept"), ("reference", "Reference"),
                          ("code", "Coding"), ("value", "Identifier")):
            if key in value:
                return kind
    return None


def _coding_row(coding: dict[str, Any], text: str | None) -> tuple:
    shown = coding.get("display") or text
    return coding.get("system"), coding.get("code"), normalise(shown) if shown else None


def token_values(node: Node) -> list[tuple[str | None, str | None, str | None]]:
    """(system, code, normalised text) rows for a token search parameter."""
    value = node.value
    if not isinstance(value, dict):
        if isinstance(value, bool):
            return [(None, "true" if value else "false", None)]
        if isinstance(value, str | int | float):
            return [(None, str(value), None)]
        return []
    kind = node.type or _kind(node)
    if kind == "CodeableConcept":
        text = value.get("text")
        rows = [_coding_row(coding, text) for coding in value.get("coding", [])]
        if text:
            norm = normalise(text)
            if norm not in [r[2] for r in rows]:  # :text sees text too
                rows.append((None, None, norm))
        return rows
    if kind == "CodeableReference":
        concept = value.get("concept")
        return token_values(Node(concept, "CodeableConcept")) if concept else []
    if kind == "Coding":
        return [_coding_row(value, None)]
    if kind == "Identifier":
        type_text = (value.get("type") or {}).get("text")
        return [(value.get("system"), value.get("value"),
                 normalise(type_text) if type_text else None)]
    if kind == "ContactPoint":
        return [(value.get("system"), value.get("value"), None)]
    return []


def of_type_key(system: str, code: str) -> str:
    """The `system` column of an `:of-type` index row: the type coding's system and code, `|`
    and `\\` escaped as in search values, so that the pair reads back unambiguously."""
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|")
    return f"{esc(system)}|{esc(code)}"


def identifier_type_values(node: Node) -> list[tuple[str | None, str | None, str | None]]:
    """(of_type_key, value, None) rows of an Identifier for `:of-type`: one per coding of its
    type that has a system and a code, when the identifier has a value."""
    value = node.value
    if not isinstance(value, dict) or not value.get("value"):
        return []
    codings = (value.get("type") or {}).get("coding") or []
    return [(of_type_key(c["system"], c["code"]), value["value"], None) for c in codings
            if isinstance(c, dict) and c.get("system") and c.get("code")]


_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


# Indexed prefix of a normalised string: btree entries stay small (PostgreSQL caps them
# near 2.7 kB); longer search values are checked against the full normalised text.
PREFIX_LENGTH = 100


def _string_row(text: str) -> tuple[str, str, str]:
    norm = normalise(text)
    return norm[:PREFIX_LENGTH], norm, text


def string_values(node: Node) -> list[tuple[str, str, str]]:
    """(indexed prefix, normalised, exact) rows for a string search parameter."""
    value = node.value
    if isinstance(value, str):
        return [_string_row(value)]
    if not isinstance(value, dict):
        return []
    parts = _NAME_PARTS if _kind(node) == "HumanName" else _ADDRESS_PARTS
    out = []
    for part in parts:
        item = value.get(part)
        for text in item if isinstance(item, list) else [item]:
            if isinstance(text, str):
                out.append(_string_row(text))
    return out


def date_values(node: Node) -> list[tuple[int, int]]:
    """(low, high) epoch-microsecond ranges for a date search parameter."""
    value = node.value
    if isinstance(value, str):
        try:
            return [date_range(value)]
        except ValueError:
            return []
    if not isinstance(value, dict):
        return []
    if (node.type or _kind(node)) == "Timing":
        out = [r for e in value.get("event", []) for r in date_values(Node(e, "dateTime"))]
        bounds = (value.get("repeat") or {}).get("boundsPeriod")
        return out + (date_values(Node(bounds, "Period")) if bounds else [])
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return []
    try:
        low = date_range(start)[0] if start else MIN_INSTANT
        high = date_range(end)[1] if end else MAX_INSTANT
    except ValueError:
        return []
    return [(low, high)]


def reference_values(node: Node) -> list[tuple[str | None, str | None, str | None]]:
    """(target type, target id, url) rows for a reference search parameter."""
    value = node.value
    if isinstance(value, str):  # canonical / uri
        return [(None, None, value.split("|", 1)[0])]
    if not isinstance(value, dict):
        return []
    literal = value.get("reference")
    if not isinstance(literal, str) or literal.startswith("#"):
        return []
    found = (_literal_target_cached(literal) if len(literal) <= _CACHED_LENGTH
             else _literal_target(literal))
    if found:  # a relative literal is all in type and id: no url (a smaller index)
        relative = "://" not in literal and not literal.startswith("urn:")
        return [(found[0], found[1], None if relative else literal)]
    rtype = value.get("type")  # reference_target's answers, without its second look-up
    rtype = rtype if isinstance(rtype, str) else None
    if found is not None:  # a bare id: its type from `type`
        return [(rtype, literal, literal)]
    return [(rtype or None, None, literal)]


def number_values(node: Node) -> list[float]:
    value = node.value
    return [float(value)] if isinstance(value, int | float) and not isinstance(
        value, bool) else []


def quantity_values(node: Node) -> list[tuple[float, float, str | None, str | None,
                                              str | None]]:
    """(low, high, system, code, unit) rows: a Quantity is a point, a Range an interval."""
    value = node.value
    if not isinstance(value, dict):
        return []
    if "low" in value or "high" in value:
        low, high = value.get("low") or {}, value.get("high") or {}
        unit = low or high
        return [(float(low.get("value", MIN_NUMBER)), float(high.get("value", MAX_NUMBER)),
                 unit.get("system"), unit.get("code"), unit.get("unit"))]
    if isinstance(value.get("value"), int | float):
        v = float(value["value"])
        return [(v, v, value.get("system"), value.get("code"), value.get("unit"))]
    return []
