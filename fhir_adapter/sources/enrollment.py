"""Enrollment sources -> a stream of `EnrollmentRecord`s with provenance (file, row).

Two families, told apart by their columns (`detect_format`):
- our enrollment format, defined by `fhir_adapter/data/enrollment.schema.json`, as CSV, JSON
  (an array, or `{"description", "study", "enrollments": [...]}`) or JSON Lines. CSV cells are
  coerced from text (integers, ';'-separated race) and then checked against the same schema;
- CDISC SDTM DM, joined with DS and SUPPDM when given, as XPT or CSV (`sources.sdtm_dm`).

Rows are read one at a time, so memory stays flat however long the file (a JSON document is
the exception: it is parsed whole; use JSON Lines or CSV for large files). A bad row becomes an
`InputError` naming file, row, column and what was expected; it is yielded in place of the
record, so a caller may stop at it or skip it. Problems with the file itself are raised.

Cross-field checks of our format (SDTM DM/DS: `sdtm_dm.py`), findings or errors:

  check                                          decision  rule / why
  end_date or end_reason with a status that is   finding   enrollment-end-with-ongoing-status:
    not completed/withdrawn/discontinued/                  the status is kept, end_date ends
    screen-failure                                         the period, end_reason is the text
                                                           of the status's reason (R5)
  consent_date, enrollment_date, status_date,    finding   enrollment-dates-out-of-order: each
    end_date not in that order                             date kept where it maps; a period
                                                           ending before its start leaves the
                                                           end out (per-1), R5 progress keeps it
  a date that does not parse, a value outside    error     nothing valid to build from it
    the schema, no study
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from ..dates import DateParseError, ParsedDate, is_after, parse_date
from ..errors import InputError
from ..records import (  # noqa: F401 (CourseEvent, EnrollmentRecord re-exported)
    CourseEvent,
    EnrollmentItem,
    EnrollmentRecord,
    Finding,
)
from .quickcheck import compile_schema
from .schemas import input_schema, input_validator
from .sdtm_dm import read_sdtm
from .tabular import columns, read_rows

END_STATUSES = frozenset({"screen-failure", "completed", "withdrawn", "discontinued"})
_DATE_FIELDS = ("consent_date", "enrollment_date", "status_date", "end_date")
_DM_COLUMNS = frozenset({"ARM", "ARMCD", "ACTARM", "SEX", "AGE", "RFSTDTC", "RFICDTC", "SITEID"})
_DOCUMENT_KEYS = frozenset({"description", "study", "enrollments"})
# ASCII digits only: float() and int() also accept other scripts' digits ('١٩٥٧').
_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


Item = EnrollmentItem


def schema() -> dict[str, Any]:
    """Our published enrollment JSON Schema (draft 2020-12)."""
    return input_schema("enrollment")


def _validator() -> jsonschema.Draft202012Validator:
    return input_validator("enrollment")


@cache
def _valid() -> Callable[[Any], bool]:
    return compile_schema(schema())


def detect_format(path: str | Path) -> str:
    """'csv', 'json' or 'jsonl' (our format) or 'sdtm' (DM), from the file's columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix.lower() == ".json":
        return "json"
    names = set(columns(path))
    upper = {c.upper() for c in names}
    if "subject_id" in names:
        return "csv"
    if "DSDECOD" in upper or "QNAM" in upper:
        kind = "DS" if "DSDECOD" in upper else "SUPPDM"
        raise InputError(str(path), f"this is an SDTM {kind} file: give the DM file, with this "
                         f"one as --{'disposition' if kind == 'DS' else 'supplemental'}")
    if "USUBJID" in upper and upper & _DM_COLUMNS:
        return "sdtm"
    if "USUBJID" in upper:
        raise InputError(str(path), "an SDTM dataset, but not DM: expected DM columns such as "
                         "ARM, SEX, RFSTDTC")
    raise InputError(str(path), "cannot tell the format: expected a subject_id column (our "
                     "enrollment format) or USUBJID (SDTM DM)")


def read_enrollments(path: str | Path, *, disposition: str | Path | None = None,
                     supplemental: str | Path | None = None,
                     study: str | None = None) -> Iterator[Item]:
    """Every subject of an enrollment file (SDTM DM with optional DS and SUPPDM), in file
    order; `study` (an NCT id or sponsor study id) takes precedence over the file's own."""
    kind = detect_format(path)
    if kind == "sdtm":
        yield from read_sdtm(Path(path), disposition, supplemental, study)
        return
    for option, value in (("--disposition", disposition), ("--supplemental", supplemental)):
        if value is not None:
            raise InputError(str(path), f"{option} goes with SDTM DM input, not our enrollment "
                             "format")
    if kind == "csv":
        yield from _read_csv(Path(path), study)
    else:
        yield from _read_json(Path(path), study, lines=kind == "jsonl")


def _read_csv(path: Path, study: str | None) -> Iterator[Item]:
    known = set(schema()["properties"])
    for name in columns(path):
        if name not in known and not name.startswith("_"):
            raise InputError(str(path), f"unknown column {name!r}: expected columns among "
                             + ", ".join(schema()["properties"]), field_name=name)
    for row in read_rows(path):
        try:
            yield parse_record(row.values, row.file, row.number, study, from_text=True)
        except InputError as exc:
            yield exc


def _read_json(path: Path, study: str | None, lines: bool) -> Iterator[Item]:
    if lines:
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield InputError(str(path), f"expected a JSON object on the line ({exc})",
                                     number)
                    continue
                yield from _json_record(value, path, number, study)
        return
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(str(path), f"not JSON ({exc}); JSON Lines files end in .jsonl") from exc
    records, default = doc, None
    if isinstance(doc, dict):
        extra = [k for k in doc if k not in _DOCUMENT_KEYS and not k.startswith("_")]
        if extra or not isinstance(doc.get("enrollments"), list):
            raise InputError(str(path), "expected an array of enrollment records or an object "
                             "with an 'enrollments' array (and optional description, study)")
        records, default = doc["enrollments"], doc.get("study")
    if not isinstance(records, list):
        raise InputError(str(path), "expected an array of enrollment records")
    if default is not None and not isinstance(default, str):
        raise InputError(str(path), "expected the document's study to be a string")
    for number, value in enumerate(records, start=1):
        yield from _json_record(value, path, number, study, default)


def _json_record(value: Any, path: Path, number: int, study: str | None,
                 default: str | None = None) -> Iterator[Item]:
    if not isinstance(value, dict):
        yield InputError(str(path), f"expected an enrollment object, got {type(value).__name__}",
                         number)
        return
    try:
        yield parse_record(value, str(path), number, study, default_study=default)
    except InputError as exc:
        yield exc


def parse_record(values: dict[str, Any], file: str, row: int, study: str | None = None,
                 from_text: bool = False, default_study: str | None = None) -> EnrollmentRecord:
    """One record of our format, checked against the schema (CSV text coerced first when
    `from_text`); raises InputError naming the field and what was expected. The study is
    `study` (--study), else the record's, else `default_study` (the JSON document's)."""
    data = _clean(values, from_text)
    # The compiled check passes valid rows fast; jsonschema explains the others.
    errors = [] if _valid()(data) else sorted(_validator().iter_errors(data), key=_order)
    if errors:
        field, message = _describe(errors[0], data)
        others = [f"{f or 'record'}: {m}" for f, m in (_describe(e, data) for e in errors[1:4])]
        if others:
            message += "; also " + "; ".join(others)
        raise InputError(file, message, row, field)
    dates = {}
    for name in _DATE_FIELDS:
        if name in data:
            try:
                dates[name] = parse_date(data[name])
            except DateParseError as exc:
                raise InputError(file, str(exc), row, name) from exc
    key = study or data.get("study") or default_study
    if not key:
        raise InputError(file, "expected the study (an NCT id or sponsor study id) in a study "
                         "column, the JSON document, or --study", row, "study")
    status = data.get("status")
    findings = _check_course(status, data, dates, file, row)
    events: tuple[CourseEvent, ...] = ()
    if status:
        when = dates.get("status_date") or (dates.get("end_date") if status in END_STATUSES
                                             else None)
        category = "disposition" if status in END_STATUSES else "status"
        events = (CourseEvent(status, "enrollment", category, when, data.get("end_reason"), 0.0,
                              file, row),)
    return EnrollmentRecord(
        file=file, row=row, format="enrollment", study=key, subject_id=data["subject_id"],
        site_id=data.get("site_id"), arm=data.get("arm"), actual_arm=data.get("actual_arm"),
        consent_date=dates.get("consent_date"), start_date=dates.get("enrollment_date"),
        end_date=dates.get("end_date"), events=events, end_reason=data.get("end_reason"),
        sex=data.get("sex"), birth_year=data.get("birth_year"),
        age=float(data["age"]) if "age" in data else None,
        age_unit="YEARS" if "age" in data else None, races=tuple(data.get("race", ())),
        ethnicity=data.get("ethnicity"), country=data.get("country"), findings=findings)


def _clean(values: dict[str, Any], from_text: bool) -> dict[str, Any]:
    """Blank -> absent, strings stripped; CSV text coerced to the schema's types."""
    kinds = {k: v.get("type") for k, v in schema()["properties"].items()}
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "" or name.startswith("_"):
            continue
        if from_text and isinstance(value, str):
            if kinds.get(name) == "integer" and _INTEGER.fullmatch(value):
                value = int(value.split(".")[0])
            elif kinds.get(name) == "array":
                value = [part.strip() for part in value.split(";") if part.strip()]
        elif isinstance(value, float) and value.is_integer() and kinds.get(name) == "integer":
            value = int(value)
        out[name] = value
    return out


def _order(error: jsonschema.ValidationError) -> int:
    names = list(schema()["properties"])
    field = error.path[0] if error.path else None
    return names.index(field) if field in names else -1


def _describe(error: jsonschema.ValidationError, data: dict[str, Any]) -> tuple[str | None, str]:
    """(field, 'expected ..., got ...') for one schema error."""
    props = schema()["properties"]
    if error.validator == "required":
        missing = next((n for n in error.validator_value if n not in data), None)
        return missing, f"expected {props[missing]['title']}, got nothing"
    if error.validator == "additionalProperties":
        extra = next((k for k in data if k not in props and not k.startswith("_")), None)
        return extra, "unknown field: expected fields among " + ", ".join(props)
    field = str(error.path[0]) if error.path else None
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    if not title and field in props:
        title = props[field].get("title")
        if not title and "$ref" in props[field]:
            title = schema()["$defs"]["date"]["title"]
    instance = data.get(field, error.instance) if field else error.instance
    return field, f"expected {title or error.message}, got {instance!r}"


def _check_course(status: str | None, data: dict[str, Any], dates: dict[str, ParsedDate],
                  file: str, row: int) -> tuple[Finding, ...]:
    """Facts of one row that contradict each other: findings, mapped as recorded (the table
    in the module docstring)."""
    found = []
    if status and status not in END_STATUSES:
        for name in ("end_date", "end_reason"):
            if name in data:
                found.append(Finding(file, row, name, "enrollment-end-with-ongoing-status",
                                     f"{name} {data[name]!r} with status {status!r} ({name} "
                                     "goes with completed, withdrawn, discontinued or "
                                     "screen-failure)"))
    order = [("consent_date", "enrollment_date"), ("consent_date", "end_date"),
             ("enrollment_date", "end_date"), ("consent_date", "status_date"),
             ("enrollment_date", "status_date")]
    for earlier, later in order:
        if earlier in dates and later in dates and is_after(dates[earlier], dates[later]):
            found.append(Finding(file, row, later, "enrollment-dates-out-of-order",
                                 f"{later} {data[later]} is before {earlier} "
                                 f"{data[earlier]}"))
    return tuple(found)
