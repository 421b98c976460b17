"""fhir_adapter.dates: ISO 8601 / SDTM dates -> FHIR date and dateTime, checked against the
official FHIR patterns, with generated inputs shaped like real ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_adapter.dates import DateParseError, ParsedDate, is_after, parse_date, to_fhir_datetime
from fhir_adapter.fhirversion import definitions

ZONES = ["America/Antigua", "America/New_York", "Europe/Berlin", "Asia/Kolkata",
         "Australia/Lord_Howe", "Pacific/Kiritimati", "America/St_Johns", "UTC"]
# What real sources hold: ISO 8601 extended dates, partial dates, SDTM unknown parts ('-').
SDTM_LIKE = (r"([0-9]{4}|-)(-([0-9]{2}|-)(-([0-9]{2}|-)(T([0-9]{2}|-)(:([0-9]{2}|-)"
             r"(:([0-9]{2}|-)(\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")


@cache
def fhir_pattern(kind: str, version: str) -> re.Pattern[str]:
    """The official FHIR regex of `date` or `dateTime` (from the vendored JSON schema)."""
    return re.compile(definitions(version)[kind]["pattern"])


def assert_fhir(text: str | None, kind: str) -> None:
    if text is None:
        return
    for version in ("R4", "R5"):
        assert fhir_pattern(kind, version).fullmatch(text), (text, kind, version)


@pytest.mark.parametrize("text, date, precision, truncated", [
    ("2024", "2024", "year", False),
    ("2024-03", "2024-03", "month", False),
    ("2024-03-14", "2024-03-14", "day", False),
    ("2024-03-14T08", "2024-03-14", "hour", False),
    ("2024-03-14T08:30", "2024-03-14", "minute", False),
    ("2024-03-14T08:30:15.5+01:00", "2024-03-14", "second", False),
    ("2024---14", "2024", "year", True),
    ("2024-03-14T-:30", "2024-03-14", "day", True),
    ("--03-14", None, None, True),
    ("2024-02-29", "2024-02-29", "day", False),
    ("--02-29", None, None, True),
    (" 2024-03-14 ", "2024-03-14", "day", False),
])
def test_parse_examples(text: str, date: str | None, precision: str | None,
                        truncated: bool) -> None:
    parsed = parse_date(text)
    assert (parsed.date, parsed.precision, parsed.truncated) == (date, precision, truncated)


@pytest.mark.parametrize("text, expected", [
    ("2023-02-29", "day of the month 01-28"),
    ("2024-13", "month 01-12"),
    ("2024-00-01", "month 01-12"),
    ("0000", "year from 0001"),
    ("2024-3-14", "ISO 8601"),
    ("14/03/2024", "ISO 8601"),
    ("", "ISO 8601"),
    ("-", "ISO 8601"),
    ("٢٠٢٤", "ISO 8601"),  # Arabic-Indic digits: int() would take them, FHIR would not
    ("2024-03-14T24:00", "hour 00-23"),
    ("2024-03-14T08:60", "minute 00-59"),
    ("2024-03-14+01:00", "ISO 8601"),
    ("2024-03-14T08:30+15:00", "UTC offset"),
    ("2024-03-14 08:30", "ISO 8601"),
])
def test_parse_rejects_with_what_was_expected(text: str, expected: str) -> None:
    with pytest.raises(DateParseError, match=re.escape(expected)):
        parse_date(text)


def test_datetime_needs_an_offset() -> None:
    assert parse_date("2024-03-14T08:30Z").datetime == "2024-03-14T08:30:00Z"
    assert parse_date("2024-03-14T08:30").datetime is None
    assert parse_date("2024-03").datetime == "2024-03"


@pytest.mark.parametrize("text, zone, expected, note", [
    ("2024-03-14T08:30", None, "2024-03-14", "without UTC offset"),
    ("2024-03-14T08:30", "America/Antigua", "2024-03-14T08:30:00-04:00", None),
    ("2024-07-01T08:30:05.25", "Europe/Berlin", "2024-07-01T08:30:05.25+02:00", None),
    ("2024-03-31T02:30", "Europe/Berlin", "2024-03-31T02:30:00+01:00", "does not exist"),
    ("2024-10-27T02:30", "Europe/Berlin", "2024-10-27T02:30:00+02:00", "occurs twice"),
    ("1850-01-01T10:00", "America/New_York", "1850-01-01", "not whole minutes"),
    ("2024-03-14T08", "Europe/Berlin", "2024-03-14", "hour only"),
    ("2024-03-14T08:30-05:00", "Europe/Berlin", "2024-03-14T08:30:00-05:00", None),
    ("2024---14", None, "2024", "unknown parts"),
    ("--03-14", "Europe/Berlin", None, "no known year"),
    ("", None, None, None),
])
def test_to_fhir_datetime(text: str, zone: str | None, expected: str | None,
                          note: str | None) -> None:
    got, said = to_fhir_datetime(text, zone)
    assert got == expected
    assert (said is None) if note is None else (note in said)
    assert_fhir(got, "dateTime")


def test_unknown_timezone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown IANA timezone"):
        to_fhir_datetime("2024-03-14T08:30", "Mars/Olympus_Mons")


def test_is_after_compares_at_common_precision() -> None:
    assert is_after(parse_date("2024-03-15"), parse_date("2024-03-14T23:59"))
    assert not is_after(parse_date("2024-03"), parse_date("2024-03-31"))
    assert not is_after(parse_date("2024-03-14T10:00"), parse_date("2024-03-14T09:00"))
    assert not is_after(parse_date("--03-14"), parse_date("2020"))
    assert is_after(parse_date("2025"), parse_date("2024-12-31"))


@given(st.from_regex(SDTM_LIKE, fullmatch=True))
def test_sdtm_like_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        parsed = parse_date(text)
    except DateParseError:
        return
    assert_fhir(parsed.date, "date")
    assert_fhir(parsed.datetime, "dateTime")
    assert_fhir(parsed.year_text, "date")
    for zone in (None, "America/Antigua"):
        got, _ = to_fhir_datetime(parsed, zone)
        assert_fhir(got, "dateTime")


@given(st.text(max_size=40))
def test_junk_raises_only_our_error(text: str) -> None:
    try:
        parsed = parse_date(text)
    except DateParseError:
        return
    assert isinstance(parsed, ParsedDate)
    assert_fhir(parsed.date, "date")


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.sampled_from(ZONES))
def test_local_times_get_the_zone_offset(local: datetime, zone: str) -> None:
    text = local.replace(microsecond=0).isoformat()
    got, note = to_fhir_datetime(text, zone)
    assert_fhir(got, "dateTime")
    if note is None:
        # The instant written is the local time in that zone.
        stamp = datetime.fromisoformat(got)
        expected = local.replace(microsecond=0, tzinfo=ZoneInfo(zone))
        assert stamp.astimezone(UTC) == expected.astimezone(UTC)


@given(st.dates(min_value=datetime(1, 1, 1).date()))
def test_complete_dates_round_trip(day) -> None:  # noqa: ANN001 - hypothesis date
    parsed = parse_date(day.isoformat())
    assert parsed.date == day.isoformat() == parsed.datetime
    assert to_fhir_datetime(parsed, "Europe/Berlin") == (day.isoformat(), None)


@given(st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
       st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True))
def test_order_agrees_with_sort_key(a: str, b: str) -> None:
    try:
        first, second = parse_date(a), parse_date(b)
    except DateParseError:
        return
    assert is_after(first, second) == (a > b)
    assert (first.sort_key() > second.sort_key()) == (a > b)



class _Text(str):
    """A str subclass: parsed without the cache, with the same answers."""


@given(st.one_of(st.from_regex(SDTM_LIKE, fullmatch=True), st.text(max_size=12)),
       st.sampled_from([None, *ZONES]))
def test_remembered_answers_are_the_computed_ones(text: str, zone: str | None) -> None:
    # Twice through the cache (the second answer is remembered), once around it.
    outcomes = []
    for value in (text, text, _Text(text)):
        try:
            outcomes.append((parse_date(value), to_fhir_datetime(value, zone)))
        except DateParseError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0] == _uncached(text, zone)


def _uncached(text: str, zone: str | None) -> object:
    from fhir_adapter import dates

    try:
        return dates._parse(text), dates._fhir_datetime(text, zone)
    except DateParseError as exc:
        return str(exc)


def test_errors_are_raised_every_time() -> None:
    for _ in range(3):
        with pytest.raises(DateParseError, match="2024-13"):
            parse_date("2024-13")
    with pytest.raises(DateParseError):
        parse_date(None)  # type: ignore[arg-type]
