"""ISO 8601 dates as clinical data holds them, turned into FHIR `date` / `dateTime` text.

Accepted (ASCII digits only, extended format):
- complete or reduced precision: "2024", "2024-03", "2024-03-14";
- with a time: "2024-03-14T08", "2024-03-14T08:30", "2024-03-14T08:30:15.250", optionally
  followed by "Z" or an offset "+01:00";
- SDTM partial dates with unknown parts written as "-": "2024---14" (month unknown),
  "--03-14" (year unknown), "2024-03-14T-:30" (hour unknown).

FHIR has no way to say "day known, month unknown", so a value keeps only its known prefix
("2024---14" -> "2024") and says so (`ParsedDate.truncated`). A value with no known year has no
FHIR form at all (`ParsedDate.date` is None).

FHIR also requires a UTC offset on every time of day, and seconds (which may be zero-filled:
R4 datatypes.html#dateTime). SDTM times carry no offset, so `to_fhir_datetime` either applies a
configured IANA timezone or keeps the date part, and returns a note saying what it did.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DateParseError", "ParsedDate", "check_timezone", "is_after", "parse_date",
           "to_fhir_datetime"]

# [0-9], never \d: \d also matches other scripts' digits ('٢٠٢٤'), which int() would accept.
_ISO = re.compile(
    r"(?P<year>[0-9]{4}|-)"
    r"(?:-(?P<month>[0-9]{2}|-)"
    r"(?:-(?P<day>[0-9]{2}|-)"
    r"(?:T(?P<hour>[0-9]{2}|-)"
    r"(?::(?P<minute>[0-9]{2}|-)"
    r"(?::(?P<second>[0-9]{2}|-)(?:\.(?P<fraction>[0-9]{1,9}))?)?)?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
    r")?)?)?"
)
_PARTS = ("year", "month", "day", "hour", "minute", "second")

EXPECTED = ("an ISO 8601 date: YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm[:ss] "
            "with an optional Z/+hh:mm offset ('-' for an unknown part, as in SDTM)")


class DateParseError(ValueError):
    """Text that is not an ISO 8601 (SDTM) date; the message says what was expected."""


@dataclass(frozen=True)
class ParsedDate:
    """A parsed ISO 8601 date/time. Components after the first unknown one are not kept."""

    text: str
    year: int | None
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    fraction: str | None = None
    offset: str | None = None  # "Z" or "+hh:mm"; only meaningful with a time
    truncated: bool = False  # the source knew parts after an unknown one (e.g. "2024---14")

    @property
    def precision(self) -> str | None:
        """'year' ... 'second': the finest component kept; None when the year is unknown."""
        last = None
        for name in _PARTS:
            if getattr(self, name) is None:
                break
            last = name
        return last

    @property
    def date(self) -> str | None:
        """FHIR `date` text (year, month, day as far as known); None without a year."""
        if self.year is None:
            return None
        out = f"{self.year:04d}"
        if self.month is not None:
            out += f"-{self.month:02d}"
            if self.day is not None:
                out += f"-{self.day:02d}"
        return out

    @property
    def year_text(self) -> str | None:
        """Just the year ("2024"), as de-identified output keeps it."""
        return None if self.year is None else f"{self.year:04d}"

    @property
    def has_time(self) -> bool:
        """True when a time of day (at least the hour) is known."""
        return self.hour is not None

    @property
    def datetime(self) -> str | None:
        """FHIR `dateTime` text when FHIR can hold the value as given: a date without time, or
        a time to the minute with an offset (seconds zero-filled). None otherwise: see
        `to_fhir_datetime` for times without an offset."""
        if not self.has_time:
            return self.date
        if self.minute is None or self.offset is None:
            return None
        return self._with_offset(self.offset)

    def sort_key(self) -> tuple[int, ...]:
        """Chronological order, coarser values first among equals ("2024" < "2024-01")."""
        return tuple(-1 if v is None else v for v in
                     (self.year, self.month, self.day, self.hour, self.minute, self.second))

    def _with_offset(self, offset: str) -> str:
        seconds = f"{self.second or 0:02d}" + (f".{self.fraction}" if self.fraction else "")
        return f"{self.date}T{self.hour:02d}:{self.minute:02d}:{seconds}{offset}"


# Bulk sources repeat their dates (an AE row checks up to three, the mapping reads them again):
# results are remembered. ParsedDate is frozen, so a shared one is safe; errors are not kept.
_CACHED = 8192


def parse_date(text: str) -> ParsedDate:
    """Parse ISO 8601 / SDTM date text; raises DateParseError naming what was expected."""
    if type(text) is not str:  # str subclasses and other types go uncached
        if not isinstance(text, str):
            raise DateParseError(f"expected {EXPECTED}, got {text!r}")
        return _parse(text)
    return _parse_cached(text)


def _parse(text: str) -> ParsedDate:
    value = text.strip()
    match = _ISO.fullmatch(value)
    if not match or not any(ch.isdigit() for ch in value):
        raise DateParseError(f"expected {EXPECTED}, got {text!r}")
    raw = {name: match.group(name) for name in _PARTS}
    kept: dict[str, int] = {}
    for name in _PARTS:
        part = raw[name]
        if part is None or part == "-":
            # FHIR cannot say "day known, month unknown": nothing after a gap is kept.
            break
        kept[name] = int(part)
    fraction = match.group("fraction") if "second" in kept else None
    truncated = (any(raw[n] not in (None, "-") and n not in kept for n in _PARTS)
                 or (match.group("fraction") is not None and fraction is None))
    _check_ranges(text, raw)
    offset = match.group("offset")
    if offset and offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if minutes > 59 or hours > 14 or (hours == 14 and minutes):
            raise DateParseError(f"expected a UTC offset between -14:00 and +14:00, got {text!r}")
    return ParsedDate(text=value, offset=offset if "hour" in kept else None,
                      fraction=fraction, truncated=truncated,
                      **{name: kept.get(name) for name in _PARTS})


_parse_cached = lru_cache(maxsize=_CACHED)(_parse)


def _check_ranges(text: str, raw: dict[str, str | None]) -> None:
    """Every given part must be in range, known prefix or not: '2024-13' is junk."""
    num = {k: int(v) for k, v in raw.items() if v not in (None, "-")}
    if num.get("year") == 0:
        raise DateParseError(f"expected a year from 0001, got {text!r}")
    if "month" in num and not 1 <= num["month"] <= 12:
        raise DateParseError(f"expected a month 01-12, got {text!r}")
    if "day" in num:
        if "month" in num:
            # Without a year, 29 February is possible.
            year = num.get("year", 2000)
            last = calendar.monthrange(year, num["month"])[1]
        else:
            last = 31
        if not 1 <= num["day"] <= last:
            raise DateParseError(f"expected a day of the month 01-{last:02d}, got {text!r}")
    for name, top in (("hour", 23), ("minute", 59), ("second", 59)):
        if name in num and num[name] > top:
            raise DateParseError(f"expected {name} 00-{top}, got {text!r}")


def check_timezone(name: str) -> ZoneInfo:
    """The IANA timezone `name` ('America/Antigua'); ValueError when there is none."""
    return _zone(name)


@cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone {name!r} (e.g. Europe/Berlin)") from exc


def to_fhir_datetime(value: str | ParsedDate | None,
                     timezone: str | None) -> tuple[str | None, str | None]:
    """FHIR `dateTime` text for a source date/time, and a note when the text is not exactly
    the source value (None when it is).

    A time without an offset gets the offset of `timezone` at that local time; without a
    timezone only the date is kept. Notes hold no source values, so callers can count them.
    """
    if type(value) is str and (timezone is None or type(timezone) is str):
        return _fhir_datetime_cached(value, timezone)
    return _fhir_datetime(value, timezone)


def _fhir_datetime(value: str | ParsedDate | None,
                   timezone: str | None) -> tuple[str | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    parsed = value if isinstance(value, ParsedDate) else parse_date(value)
    if parsed.year is None:
        return None, "has no known year: FHIR cannot hold it, not carried"
    partial = "has unknown parts: kept the known prefix" if parsed.truncated else None
    if not parsed.has_time:
        return parsed.date, partial
    if parsed.minute is None:
        return parsed.date, "has a time of day to the hour only: kept the date"
    if parsed.offset is not None:
        return parsed.datetime, partial
    if timezone is None:
        return parsed.date, ("has a time of day without UTC offset and no timezone is set: "
                             "kept the date")
    text, note = _localise(parsed, timezone)
    return text, note or partial


_fhir_datetime_cached = lru_cache(maxsize=_CACHED)(_fhir_datetime)


def _localise(parsed: ParsedDate, timezone: str) -> tuple[str | None, str | None]:
    zone = _zone(timezone)
    assert parsed.year and parsed.month and parsed.day is not None and parsed.hour is not None
    local = datetime(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute or 0,
                     parsed.second or 0, tzinfo=zone)
    try:
        offset = local.utcoffset()
        back = local.astimezone(UTC).astimezone(zone)
    except (OverflowError, ValueError):
        return parsed.date, "local time cannot be placed in the timezone: kept the date"
    note = None
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):
        note = "local time does not exist in the timezone (clock change): used the earlier offset"
    elif local.replace(fold=1).utcoffset() != offset:
        note = "local time occurs twice in the timezone (clock change): used the earlier offset"
    text = _offset_text(offset)
    if text is None:
        return parsed.date, "timezone offset at that time is not whole minutes: kept the date"
    return parsed._with_offset(text), note


def _offset_text(offset: timedelta | None) -> str | None:
    """'+hh:mm' for an offset FHIR can write (whole minutes, at most 14:00), else None."""
    if offset is None:
        return None
    seconds = int(offset.total_seconds())
    if seconds % 60 or abs(seconds) > 14 * 3600:
        return None
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def is_after(a: ParsedDate, b: ParsedDate) -> bool:
    """True when `a` is certainly later than `b`, comparing dates at their common precision
    (times are not compared: offsets may be unknown)."""
    depth = min(3, len([p for p in (a.year, a.month, a.day) if p is not None]),
                len([p for p in (b.year, b.month, b.day) if p is not None]))
    return a.sort_key()[:depth] > b.sort_key()[:depth]
