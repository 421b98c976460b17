"""Our adverse-event format (fhir_adapter/data/adverse-event.schema.json): CSV, a JSON array
(or one object), or JSON Lines -> `AdverseEventRecord`s.

Each row or object is coerced from text first (CSV cells are text; JSON may hold "Y" or "3"
as well), then validated against the published JSON Schema, so the schema is the one place
that says what is accepted. Values that contradict each other (not serious, yet a criterion
met; a fatal outcome not resulting in death, ...) are not the schema's to refuse: they are
findings, mapped as recorded (the table in `adverse_event_checks.py`); an end date before
the onset stays an error. Errors name the file, the row (CSV data row, array item or JSON
Lines line, from 1), the column and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from ..dates import DateParseError, is_after, parse_date
from ..errors import InputError
from ..records import AdverseEventItem, AdverseEventRecord, MeddraTerm
from .adverse_event_checks import ae_findings
from .schemas import input_schema, input_validator
from .tabular import columns, read_rows

# Our criterion columns -> the SDTM flag the record (and the ConceptMap) use.
CRITERIA = {"results_in_death": "AESDTH", "life_threatening": "AESLIFE",
            "hospitalisation": "AESHOSP", "disability": "AESDISAB",
            "congenital_anomaly": "AESCONG", "other_medically_important": "AESMIE"}
COLUMNS = {"study": "study_id", "subject_id": "subject_id", "event_key": "event_id",
           "verbatim_term": "verbatim_term", "categories": "category", "severity": "severity",
           "grade": "ctcae_grade", "serious": "serious", "onset": "onset_date",
           "end": "end_date", "recorded": "recorded_date", "outcome": "outcome",
           "relatedness": "relatedness", "actions": "action_taken", "expected": "expected",
           "intervention": "intervention", "treatment_emergent": "treatment_emergent"}
# SDTM variable -> our column, for findings' messages.
_OUR_COLUMN = {"AESER": "serious", "AEOUT": "outcome", **{v: c for c, v in CRITERIA.items()}}
_TRUE = {"y", "yes", "true", "1"}
_FALSE = {"n", "no", "false", "0"}


def schema() -> dict[str, Any]:
    """The published adverse-event JSON Schema (draft 2020-12)."""
    return input_schema("adverse-event")


def _validator() -> jsonschema.Draft202012Validator:
    return input_validator("adverse-event")


def open_format_file(path: Path, kind: str, study: str | None
                     ) -> tuple[str, Iterator[AdverseEventItem]]:
    """(format, record stream) of a file in our format; `kind` is "csv" or "json" (the
    format found is "json" or "jsonl")."""
    if kind == "csv":
        unknown = [c for c in columns(path) if c not in schema()["properties"]]
        if unknown:
            raise InputError(str(path), f"unknown column(s) {', '.join(unknown)}: expected "
                             f"{', '.join(schema()['properties'])}", field_name=unknown[0])
        items = ((row.number, row.values) for row in read_rows(path))
        return "csv", _records(path, items, study)
    kind, items = _json_items(path)
    return kind, _records(path, items, study)


def _json_items(path: Path) -> tuple[str, Iterator[tuple[int, Any]]]:
    """("json", items of an array or one object) or ("jsonl", one object per line)."""
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        orjson.loads(first)
        whole_line = first.strip().startswith(b"{")
    except orjson.JSONDecodeError:
        whole_line = False
    if whole_line:
        return "jsonl", _lines(path)
    try:
        # A JSON array is read whole; JSON Lines is the streaming form for large loads.
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(str(path), f"neither JSON nor JSON Lines ({exc})") from exc
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise InputError(str(path), "expected a JSON array of adverse-event objects")
    return "json", iter(enumerate(doc, start=1))


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(str(path), f"not a JSON object ({exc})", number) from exc


def _records(path: Path, items: Iterator[tuple[int, Any]],
             study: str | None) -> Iterator[AdverseEventItem]:
    for number, item in items:
        try:
            yield to_record(str(path), number, item, study)
        except InputError as exc:
            yield exc


def to_record(file: str, number: int, item: Any, study: str | None) -> AdverseEventRecord:
    """Coerce, validate and convert one row/object of our format; InputError when invalid."""
    if not isinstance(item, dict):
        raise InputError(file, "expected a JSON object", number)
    data = coerce(item)
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path)))
    if errors:
        column, message = explain(errors[0])
        raise InputError(file, message, number, column,
                         details=[": ".join(explain(e)) for e in errors[1:]])
    for column in ("onset_date", "end_date", "recorded_date"):
        if column in data:
            try:
                parse_date(data[column])
            except DateParseError as exc:
                raise InputError(file, str(exc), number, column) from exc
    if "onset_date" in data and "end_date" in data and is_after(
            parse_date(data["onset_date"]), parse_date(data["end_date"])):
        raise InputError(file, f"end {data['end_date']!r} is before the onset "
                         f"{data['onset_date']!r}", number, "end_date")
    record_study = study or data.get("study_id")
    if not record_study:
        raise InputError(file, "required value is missing (or give --study)", number, "study_id")
    criteria = {var: data[col] for col, var in CRITERIA.items() if col in data}
    outcome = _upper(data.get("outcome"))
    findings = ae_findings(file, number, data.get("serious"), criteria, outcome,
                           lambda name: _OUR_COLUMN.get(name, name))
    meddra = tuple(MeddraTerm(level, data.get(f"meddra_{level}_term"),
                              data.get(f"meddra_{level}_code"))
                   for level in ("llt", "pt", "soc")
                   if f"meddra_{level}_term" in data or f"meddra_{level}_code" in data)
    return AdverseEventRecord(
        file=file, row=number, study=record_study, subject_id=data["subject_id"],
        event_key=data["event_id"], verbatim_term=data["verbatim_term"], columns=COLUMNS,
        meddra=meddra, categories=tuple(c for c in [data.get("category")] if c),
        severity=_upper(data.get("severity")), grade=data.get("ctcae_grade"),
        serious=data.get("serious"), criteria=criteria,
        onset=data.get("onset_date"), end=data.get("end_date"),
        recorded=data.get("recorded_date"), outcome=outcome,
        relatedness=_upper(data.get("relatedness")),
        actions=tuple(a.upper() for a in data.get("action_taken", ())),
        expected=data.get("expected"), intervention=data.get("intervention"),
        treatment_emergent=data.get("treatment_emergent"), findings=findings)


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None


def coerce(item: dict[str, Any]) -> dict[str, Any]:
    """Typed values from CSV text (and lenient JSON): blanks dropped, Y/N -> booleans,
    '3.0' -> 3, enum text lower-cased, 'a; b' -> [a, b]. What cannot be coerced is left as
    it is, for the schema to report."""
    props = schema()["properties"]
    out: dict[str, Any] = {}
    for key, value in item.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        spec = props.get(key, {})
        kind = spec.get("type")
        if isinstance(value, str):
            value = value.strip()
        if kind == "boolean" and isinstance(value, str):
            low = value.lower()
            value = True if low in _TRUE else False if low in _FALSE else value
        elif kind == "integer":
            value = _number(value)
        elif kind == "string" and "enum" in spec and isinstance(value, str):
            value = " ".join(value.lower().split())
        elif kind == "string" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # MedDRA codes written as JSON numbers
        elif kind == "array" and isinstance(value, str):
            value = [" ".join(v.lower().split()) for v in value.split(";") if v.strip()]
        elif kind == "array" and isinstance(value, list):
            value = [" ".join(v.lower().split()) if isinstance(v, str) else v for v in value]
        out[key] = value
    return out


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else value
    return value


def explain(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(column, what was expected) for one schema error, in words a data manager can act on."""
    path = [str(p) for p in error.absolute_path]
    column = path[0] if path else ""
    spec = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required":
        missing = error.message.split("'")[1]
        if "$id" in spec:  # the top level: say what the field is
            about = schema()["properties"][missing]["description"]
            return missing, f"required value is missing: {about}"
        return missing, spec.get("description") or "required value is missing"
    if error.validator == "additionalProperties":
        extra = error.message.split("'")[1]
        return extra, "unknown field: not in the adverse-event schema"
    expected = spec.get("x-expected") or spec.get("description", "")
    if error.validator == "enum":
        return column, f"{error.instance!r} is not one of: {', '.join(spec['enum'])}"
    if error.validator == "type":
        return column, f"expected {spec.get('x-expected') or spec['type']}, got {error.instance!r}"
    if error.validator in ("pattern", "minimum", "maximum"):
        return column, f"expected {expected}, got {error.instance!r}"
    if error.validator == "const":
        return column, spec.get("description") or error.message
    return column, error.message
