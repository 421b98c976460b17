"""SDTM TS (trial summary) rows -> parameter values, and the parsing of TS value formats
(ISO 8601 ages, dates, registry ids) into ClinicalTrials.gov v2 forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .tabular import Row

_ISO_AGE = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?")
_AGE_UNITS = ("Year", "Month", "Week", "Day", "Hour", "Minute")
_TEXT_AGE = re.compile(r"(\d+)\s*(year|month|week|day|hour|minute)s?", re.IGNORECASE)
# CT.gov says "no limit" by leaving the age out; TS says it in words or with a null flavor.
NO_LIMIT = re.compile(r"no\s+(maximum|minimum|max|min|limit|upper limit|lower limit)|none"
                      r"|n/?a|not applicable|pinf|ninf", re.IGNORECASE)
DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_EUDRACT = re.compile(r"\d{4}-\d{6}-\d{2}")
_CTIS = re.compile(r"\d{4}-\d{6}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Param:
    """One TS value: TSVAL (or its null flavor TSVALNF) with its code, if any."""

    code: str
    label: str | None
    value: str
    value_code: str | None
    code_system: str | None
    code_version: str | None


def ts_params(rows: list[Row]) -> dict[str, list[Param]]:
    """TS rows grouped by TSPARMCD (file order), values ordered by TSGRPID then TSSEQ."""
    keyed: list[tuple[tuple[Any, ...], Param]] = []
    for row in rows:
        code = (row.get("TSPARMCD") or "").upper()
        if not code:
            raise row.error("TSPARMCD", "blank TSPARMCD")
        value = _long_value(row) or row.get("TSVALNF")
        if value is None:  # neither a value nor a null flavor: the row states nothing
            continue
        seq = row.get("TSSEQ") or ""
        order = (row.get("TSGRPID") or "", int(seq) if seq.isdigit() else 0, row.number)
        keyed.append((order, Param(code, row.get("TSPARM"), value, row.get("TSVALCD"),
                                   row.get("TSVCDREF"), row.get("TSVCDVER"))))
    first_seen = {p.code: i for i, (_, p) in reversed(list(enumerate(keyed)))}
    keyed.sort(key=lambda item: (first_seen[item[1].code], item[0]))
    params: dict[str, list[Param]] = {}
    for _, param in keyed:
        params.setdefault(param.code, []).append(param)
    return params


def _long_value(row: Row) -> str | None:
    """TSVAL, continued in TSVAL1..TSVALn when longer than XPORT's 200 characters. Sponsors
    split between words and our reader strips the edges, so the parts are joined by a space."""
    extra = sorted((k for k in row.values if re.fullmatch(r"TSVAL\d+", k)),
                   key=lambda k: int(k[5:]))
    parts = [row.get(k) for k in ["TSVAL", *extra]]
    return " ".join(p for p in parts if p) or None


def ct_gov_age(value: str) -> str | None:
    """'P50Y' / 'P18M' / 'P1Y6M' / '50 years' -> CT.gov '50 Years' / '18 Months' / ...;
    None when the text is no single age."""
    value = value.strip()
    iso = _ISO_AGE.fullmatch(value.upper())
    if iso and value.upper() != "P":
        parts = [int(g) if g else 0 for g in iso.groups()]
        if parts[0] and parts[1] and not any(parts[2:]):  # P1Y6M: CT.gov ages have one unit
            parts = [0, parts[0] * 12 + parts[1], 0, 0, 0, 0]
        nonzero = [(n, unit) for n, unit in zip(parts, _AGE_UNITS, strict=True) if n]
        if len(nonzero) == 1:
            return _age(*nonzero[0])
        return None
    text = _TEXT_AGE.fullmatch(value)
    if text:
        return _age(int(text.group(1)), text.group(2).capitalize())
    return None


def _age(number: int, unit: str) -> str:
    return f"{number} {unit}" + ("" if number == 1 else "s")


def registry_type(value: str) -> str:
    """CT.gov secondary id type of a non-NCT registry id (EudraCT and CTIS have their own)."""
    if _CTIS.fullmatch(value):
        return "CTIS"
    if _EUDRACT.fullmatch(value):
        return "EUDRACT_NUMBER"
    return "REGISTRY"
