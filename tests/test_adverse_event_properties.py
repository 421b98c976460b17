"""Property tests: partial dates and Y/N flags in both source formats, and the round trip
row -> FHIR -> facts that must lose no seriousness, severity, grade, outcome or date."""

from __future__ import annotations

from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapter.dates import DateParseError, parse_date
from fhir_adapter.errors import InputError
from fhir_adapter.findings import RULES
from fhir_adapter.mapping.adverse_event import map_adverse_event
from fhir_adapter.mapping.adverse_event_inverse import fhir_to_record, safety_facts
from fhir_adapter.sources.adverse_event import AdverseEventRecord, parse_sdtm_row
from fhir_adapter.sources.adverse_event_format import CRITERIA, schema, to_record
from fhir_adapter.sources.tabular import Row
from fhir_adapter.validation import validate

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
BASE = {"study_id": "NCT05003921", "subject_id": "AG01-001", "event_id": "E1",
        "verbatim_term": "Headache"}
partial_dates = st.from_regex(r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?", fullmatch=True)
FLAG_WORDS = ["Y", "N", "y", "n", "U", "NA", "yes", "no", "true", "false", "1", "0"]
flag_texts = st.one_of(st.sampled_from(FLAG_WORDS), st.text(max_size=4))


def _sdtm(values: dict[str, str | None]) -> AdverseEventRecord:
    row = {"STUDYID": "S1", "USUBJID": "S1-001", "AESEQ": "1", "AETERM": "HEADACHE", **values}
    return parse_sdtm_row(Row("ae.csv", 1, {k: (v.strip() or None) if isinstance(v, str)
                                           else v for k, v in row.items()}))


@SETTINGS
@given(date=partial_dates)
def test_our_partial_dates_are_kept_exactly_or_refused_by_column(date: str) -> None:
    try:
        record = to_record("ae.json", 1, {**BASE, "onset_date": date}, None)
    except InputError as exc:
        assert exc.field_name == "onset_date" and exc.row == 1
        try:
            parse_date(date)
        except DateParseError:
            return
        raise AssertionError(f"{date!r} parses but was refused") from exc
    for version in ("R4", "R5"):
        facts = fhir_to_record(map_adverse_event(record, version).resources[0], version)
        assert facts["onset"] == date


@SETTINGS
@given(date=st.from_regex(r"([0-9]{4}|-)(-([0-9]{2}|-)(-([0-9]{2}|-))?)?", fullmatch=True))
def test_sdtm_partial_dates_keep_their_known_prefix_or_name_the_column(date: str) -> None:
    try:
        record = _sdtm({"AESTDTC": date})
    except InputError as exc:
        assert exc.field_name == "AESTDTC"
        return
    ae = map_adverse_event(record, "R5").resources[0]
    start = ae.get("occurrencePeriod", {}).get("start")
    parsed = parse_date(date)
    assert start == parsed.date  # None when the year is unknown
    assert validate(ae, "R5") == []


@SETTINGS
@given(serious=flag_texts, death=flag_texts)
def test_sdtm_flags_are_booleans_or_named_errors(serious: str, death: str) -> None:
    try:
        record = _sdtm({"AESER": serious, "AESDTH": death})
    except InputError as exc:
        assert exc.field_name in ("AESER", "AESDTH")
        return
    for text, value in ((serious, record.serious), (death, record.criteria.get("AESDTH"))):
        word = text.strip().upper()
        assert value == {"Y": True, "N": False}.get(word)


@SETTINGS
@given(serious=flag_texts)
def test_our_flags_are_booleans_or_named_errors(serious: str) -> None:
    try:
        record = to_record("ae.csv", 1, {**BASE, "serious": serious}, None)
    except InputError as exc:
        assert exc.field_name == "serious"
        return
    word = serious.strip().lower()
    if not word:
        assert record.serious is None  # a blank cell is absent
    else:
        assert record.serious is (word in ("y", "yes", "true", "1"))
        assert word in ("y", "yes", "true", "1", "n", "no", "false", "0")


PROPS = schema()["properties"]
timestamps = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1))
offsets = st.sampled_from(["Z", "+00:00", "+01:00", "-05:00", "+05:30", "-09:30", "+14:00"])


@st.composite
def dates(draw: st.DrawFn) -> str:
    moment = draw(timestamps)
    kind = draw(st.sampled_from(["year", "month", "day", "minute", "second"]))
    text = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "minute": "%Y-%m-%dT%H:%M",
            "second": "%Y-%m-%dT%H:%M:%S"}[kind]
    out = moment.strftime(text)
    return out + draw(offsets) if kind in ("minute", "second") else out


@st.composite
def rows(draw: st.DrawFn) -> dict:
    """A valid row of our format, as a JSON object."""
    row = dict(BASE)
    optional = {
        "severity": st.sampled_from(PROPS["severity"]["enum"]),
        "ctcae_grade": st.integers(1, 5),
        "outcome": st.sampled_from(PROPS["outcome"]["enum"]),
        "relatedness": st.sampled_from(PROPS["relatedness"]["enum"]),
        "action_taken": st.lists(st.sampled_from(PROPS["action_taken"]["items"]["enum"]),
                                 min_size=1, max_size=3, unique=True),
        "expected": st.booleans(), "recorded_date": dates(),
        "treatment_emergent": st.booleans(),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            row[name] = draw(strategy)
    serious = draw(st.sampled_from([True, False, None]))
    if serious is not None:
        row["serious"] = serious
    # Any flags, whatever `serious` says: a contradiction is a finding, mapped as recorded.
    for column in CRITERIA:
        if draw(st.booleans()):
            row[column] = draw(st.booleans())
    onset, end = draw(st.one_of(st.none(), dates())), draw(st.one_of(st.none(), dates()))
    if onset and end and parse_date(end).sort_key()[:3] < parse_date(onset).sort_key()[:3]:
        onset, end = end, onset
    for name, value in (("onset_date", onset), ("end_date", end)):
        if value:
            row[name] = value
    return row


def same_moment(source: str | None, fhir: str | None) -> bool:
    """FHIR text holds the source date/time: equal components (seconds zero-filled)."""
    if source is None or fhir is None:
        return source == fhir
    a, b = parse_date(source), parse_date(fhir)
    zero = {"second": a.second or 0} if a.minute is not None else {}
    return (a.sort_key()[:5], a.offset) == (b.sort_key()[:5], b.offset) and \
        (not zero or b.second == zero["second"])


@SETTINGS
@given(row=rows(), version=st.sampled_from(["R4", "R5"]))
def test_round_trip_loses_no_safety_fact(row: dict, version: str) -> None:
    record = to_record("ae.json", 1, row, None)
    mapped = map_adverse_event(record, version)
    event = mapped.resources[0]
    assert validate(event, version) == []
    facts = fhir_to_record(event, version)
    given = {CRITERIA[c]: v for c, v in row.items() if c in CRITERIA}
    # blank seriousness with a criterion met is written serious (a finding says so)
    serious = row.get("serious", True if any(given.values()) else None)
    assert facts["serious"] == serious
    assert facts["criteria"] == (given if serious or any(given.values()) else {})
    assert facts["treatment_emergent"] == row.get("treatment_emergent")
    assert {f.rule for f in record.findings} <= set(RULES)
    tags = {t["code"] for t in event.get("meta", {}).get("tag", [])}
    assert tags == {f.rule for f in record.findings}
    assert facts["severity"] == (row["severity"].upper() if "severity" in row else None)
    assert facts["grade"] == row.get("ctcae_grade")
    died = row.get("results_in_death") is True
    expected_outcome = row["outcome"].upper() if "outcome" in row else ("FATAL" if died else None)
    assert facts["outcome"] == expected_outcome
    assert facts["expected"] == row.get("expected")
    assert facts["relatedness"] == (row["relatedness"].upper() if "relatedness" in row else None)
    assert facts["actions"] == [a.upper() for a in row.get("action_taken", [])]
    for name, column in (("onset", "onset_date"), ("end", "end_date"),
                         ("recorded", "recorded_date")):
        assert same_moment(row.get(column), facts[name]), (name, row.get(column), facts[name])


@SETTINGS
@given(row=rows(), version=st.sampled_from(["R4", "R5"]))
def test_the_summary_counts_what_fhir_to_record_reads(row: dict, version: str) -> None:
    event = map_adverse_event(to_record("ae.json", 1, row, None), version).resources[0]
    facts = fhir_to_record(event, version)
    summary = safety_facts(event, version)
    assert summary == {k: facts[k] for k in summary}
    assert set(summary) == {"serious", "criteria", "severity", "grade", "outcome",
                            "relatedness"}


@SETTINGS
@given(row=rows(), version=st.sampled_from(["R4", "R5"]))
def test_concepts_from_the_memo_are_the_lookups_and_new_each_time(row: dict,
                                                                   version: str) -> None:
    from fhir_adapter.conceptmaps import lookup
    from fhir_adapter.mapping.adverse_event_codes import _cc, _concept

    record = to_record("ae.json", 1, row, None)
    first = map_adverse_event(record, version).resources[0]
    second = map_adverse_event(record, version).resources[0]
    assert first == second
    for map_id, code in (("sdtm-aesev-severity", "MILD"), ("sdtm-aeser-seriousness-r4", "Y"),
                         ("sdtm-aeacn-action-taken", "DRUG WITHDRAWN")):
        a, b = _concept(map_id, code), _concept(map_id, code)
        assert a == b == _cc(lookup(map_id, code))
        assert a is not b and a["coding"][0] is not b["coding"][0]
