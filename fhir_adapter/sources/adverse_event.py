"""Adverse event sources -> `AdverseEventRecord`s: CDISC SDTM AE (+ SUPPAE), CSV or XPT, and our
own adverse-event format (CSV, JSON, JSON Lines; `adverse_event_format.py`).

The format is told from the columns: SDTM when the file has USUBJID and AETERM, ours when it
has subject_id and verbatim_term. Rows stream one at a time; SUPPAE is read into memory first
(one dict entry per supplemental qualifier). A bad row becomes an `InputError` in the stream
(file, row, column, what was expected) so a caller can stop or skip it; a bad file raises.

Records hold source facts only, in one vocabulary: CDISC terms upper-case (MILD, RECOVERED/
RESOLVED, DRUG WITHDRAWN), seriousness criteria keyed by SDTM variable (AESDTH ...), dates
as the source text (checked by `fhir_adapter.dates`). Nothing FHIR-specific happens here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..conceptmaps import source_codes
from ..dates import DateParseError, is_after, parse_date
from ..errors import InputError
from .suppae import id_value, read_suppae
from .tabular import Row, columns, is_xpt, read_rows

CRITERIA = ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE", "AESCAN", "AESOD")
MEDDRA_LEVELS = ("llt", "pt", "hlt", "hlgt", "soc", "bodySystem")

# Record field -> ConceptMap whose source codes are the accepted values.
VOCABULARY = {"severity": "sdtm-aesev-severity", "outcome": "sdtm-aeout-outcome-r4",
              "relatedness": "sdtm-aerel-relatedness", "action": "sdtm-aeacn-action-taken"}

# SDTM variable -> record field, for error messages and the unused-column warning.
SDTM_FIELDS = {
    "STUDYID": "study", "USUBJID": "subject_id", "AESEQ": "event_key", "AESPID": "sponsor_id",
    "AETERM": "verbatim_term", "AECAT": "categories", "AESCAT": "categories",
    "AESEV": "severity", "AETOXGR": "grade", "AESER": "serious", "AESTDTC": "onset",
    "AEENDTC": "end", "AEDTC": "recorded", "AEOUT": "outcome", "AEREL": "relatedness",
    "AEACN": "actions", "DOMAIN": "-",
    **{c: "criteria" for c in CRITERIA},
    # MedDRA: (level, term variable, code variable)
    "AELLT": "meddra", "AELLTCD": "meddra", "AEDECOD": "meddra", "AEPTCD": "meddra",
    "AEHLT": "meddra", "AEHLTCD": "meddra", "AEHLGT": "meddra", "AEHLGTCD": "meddra",
    "AESOC": "meddra", "AESOCCD": "meddra", "AEBODSYS": "meddra", "AEBDSYCD": "meddra",
}
SDTM_MEDDRA = (("llt", "AELLT", "AELLTCD"), ("pt", "AEDECOD", "AEPTCD"),
               ("hlt", "AEHLT", "AEHLTCD"), ("hlgt", "AEHLGT", "AEHLGTCD"),
               ("soc", "AESOC", "AESOCCD"), ("bodySystem", "AEBODSYS", "AEBDSYCD"))
_ACN_QNAM = re.compile(r"AEACN\d+")


@dataclass(frozen=True)
class MeddraTerm:
    """One level of the MedDRA hierarchy as the source gives it (term, code or both)."""

    level: str  # llt | pt | hlt | hlgt | soc | bodySystem
    term: str | None
    code: str | None


@dataclass
class AdverseEventRecord:
    """One adverse event as the source states it, with where it came from."""

    file: str
    row: int
    study: str
    subject_id: str
    event_key: str  # AESEQ or our event_id: unique per subject
    verbatim_term: str
    columns: dict[str, str]  # record field -> source column, for messages
    sponsor_id: str | None = None  # AESPID
    meddra: tuple[MeddraTerm, ...] = ()
    categories: tuple[str, ...] = ()
    severity: str | None = None
    grade: int | None = None
    serious: bool | None = None
    criteria: dict[str, bool] = field(default_factory=dict)
    onset: str | None = None
    end: str | None = None
    recorded: str | None = None
    outcome: str | None = None
    relatedness: str | None = None
    actions: tuple[str, ...] = ()
    expected: bool | None = None
    intervention: str | None = None


@dataclass
class AdverseEventSource:
    """A readable adverse-event file: its format, its records, and file-level warnings."""

    path: Path
    format: str  # "sdtm" | "csv" | "json" | "jsonl"
    records: Iterator[AdverseEventRecord | InputError]
    warnings: list[str]


def open_adverse_events(path: str | Path, supplemental: str | Path | None = None,
                        study: str | None = None) -> AdverseEventSource:
    """Detect the format of `path` and return its record stream (lazy: nothing is read yet
    beyond the header and SUPPAE)."""
    from .adverse_event_format import open_format_file

    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    warnings: list[str] = []
    if is_xpt(path) or _looks_tabular(path):
        names = {c.upper(): c for c in columns(path)}
        if "USUBJID" in names and "AETERM" in names:
            supp = read_suppae(Path(supplemental), warnings) if supplemental else {}
            return AdverseEventSource(path, "sdtm", _sdtm_records(path, names, supp, study,
                                                                   warnings), warnings)
        if supplemental:
            raise InputError(str(supplemental), "--supplemental (SUPPAE) goes with an SDTM AE file")
        if "subject_id" in columns(path):
            return open_format_file(path, "csv", study, warnings)
        raise InputError(str(path), "cannot tell the format: expected SDTM AE columns (USUBJID, "
                         "AETERM, AESEQ, ...) or fhir-adapter columns (subject_id, event_id, "
                         "verbatim_term, ...)")
    if supplemental:
        raise InputError(str(supplemental), "--supplemental (SUPPAE) goes with an SDTM AE file")
    return open_format_file(path, "json", study, warnings)


def _looks_tabular(path: Path) -> bool:
    """CSV unless the first non-blank character opens JSON."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return not head.startswith((b"[", b"{"))


def _sdtm_records(path: Path, names: dict[str, str], supp: dict, study: str | None,
                  warnings: list[str]) -> Iterator[AdverseEventRecord | InputError]:
    unused = sorted(set(names) - set(SDTM_FIELDS))
    if unused:
        warnings.append(f"{path}: columns not mapped: {', '.join(unused)} (study days such as "
                        "AESTDY are derived from the dates, which are mapped)")
    if "AESEQ" not in names:
        raise InputError(str(path), "SDTM AE needs AESEQ (the event key per subject)",
                         field_name="AESEQ")
    used: set[tuple[str, str, str]] = set()
    unknown_qnams: dict[str, int] = {}
    for row in read_rows(path, upper_columns=True):
        try:
            yield _sdtm_record(row, supp, study, used, unknown_qnams)
        except InputError as exc:
            yield exc
    for qnam, count in sorted(unknown_qnams.items()):
        warnings.append(f"SUPPAE QNAM {qnam} ({count} value(s)) has no FHIR target: not mapped")
    orphans = len(set(supp) - used)
    if orphans:
        warnings.append(f"{orphans} SUPPAE record key(s) match no AE row: not mapped")


def _sdtm_record(row: Row, supp: dict, study: str | None, used: set,
                 unknown_qnams: dict[str, int]) -> AdverseEventRecord:
    values = dict(row.values)
    subject = _required(row, values, "USUBJID")
    seq = _integer(row, "AESEQ", values.get("AESEQ"))
    if seq is None:
        raise row.error("AESEQ", "required value is missing (the event key per subject)")
    actions = _merge_suppae(row, values, supp, subject, seq, used, unknown_qnams)
    serious = _flag(row, "AESER", values.get("AESER"))
    criteria = {c: v for c in CRITERIA if (v := _flag(row, c, values.get(c))) is not None}
    _check_criteria(row, serious, criteria, "AESER")
    grade = _integer(row, "AETOXGR", values.get("AETOXGR"))
    if grade is not None and not 1 <= grade <= 5:
        raise row.error("AETOXGR", f"expected a CTCAE grade 1-5, got {values['AETOXGR']!r}")
    action = _term(row, "AEACN", values.get("AEACN"), "action")
    if action == "MULTIPLE" and actions:
        action_list = actions
    else:
        action_list = tuple(a for a in (action, *actions) if a)
    onset, end = (_date(row, c, values.get(c)) for c in ("AESTDTC", "AEENDTC"))
    _check_order(row, onset, end, "AEENDTC")
    return AdverseEventRecord(
        file=row.file, row=row.number, study=_study(row, values, study), subject_id=subject,
        event_key=str(seq), verbatim_term=_required(row, values, "AETERM"),
        columns={f: v for v, f in SDTM_FIELDS.items() if f not in ("criteria", "meddra")},
        sponsor_id=values.get("AESPID"),
        meddra=tuple(t for level, term, code in SDTM_MEDDRA
                     if (t := _meddra(row, level, values.get(term), code, values.get(code)))),
        categories=tuple(v for c in ("AECAT", "AESCAT") if (v := values.get(c))),
        severity=_term(row, "AESEV", values.get("AESEV"), "severity"), grade=grade,
        serious=serious, criteria=criteria, onset=onset, end=end,
        recorded=_date(row, "AEDTC", values.get("AEDTC")),
        outcome=_term(row, "AEOUT", values.get("AEOUT"), "outcome"),
        relatedness=_term(row, "AEREL", values.get("AEREL"), "relatedness"),
        actions=action_list)


def parse_sdtm_row(row: Row, study: str | None = None) -> AdverseEventRecord:
    """One SDTM AE row (no SUPPAE) -> record; InputError naming the row and column."""
    return _sdtm_record(row, {}, study, set(), {})


def _merge_suppae(row: Row, values: dict, supp: dict, subject: str, seq: int, used: set,
                  unknown_qnams: dict[str, int]) -> tuple[str, ...]:
    """Fold this row's SUPPAE qualifiers in: AE variables fill blanks, AEACNn are actions."""
    actions: list[tuple[int, str]] = []
    keys = [(subject, "AESEQ", str(seq))]
    if values.get("AESPID"):
        keys.append((subject, "AESPID", id_value(values["AESPID"])))
    for key in keys:
        if key not in supp:
            continue
        used.add(key)
        for qnam, qval in supp[key].items():
            if _ACN_QNAM.fullmatch(qnam):
                term = _term(row, qnam, qval, "action")
                actions.append((int(qnam[5:]), term or ""))
            elif qnam in SDTM_FIELDS:
                if values.get(qnam) not in (None, qval):
                    raise row.error(qnam, f"AE has {values[qnam]!r} but SUPPAE says {qval!r}")
                values[qnam] = qval
            else:
                unknown_qnams[qnam] = unknown_qnams.get(qnam, 0) + 1
    return tuple(term for _, term in sorted(actions) if term)


def _study(row: Row, values: dict, study: str | None) -> str:
    # --study wins: it names the registry id (NCT) the sponsor STUDYID belongs to.
    if study:
        return study
    return _required(row, values, "STUDYID")


def _required(row: Row, values: dict, column: str) -> str:
    value = values.get(column)
    if not value:
        raise row.error(column, "required value is missing")
    return value


def _flag(row: Row, column: str, value: str | None) -> bool | None:
    """SDTM No Yes Response: Y/N; U (unknown) and NA are 'not assessed' like a blank."""
    if value is None:
        return None
    upper = value.strip().upper()
    if upper in ("Y", "N"):
        return upper == "Y"
    if upper in ("U", "NA"):
        return None
    raise row.error(column, f"expected Y, N, U or NA, got {value!r}")


def _integer(row: Row, column: str, value: str | None) -> int | None:
    """A whole number written as '3' (XPT) or '3.0' (SAS CSV export)."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise row.error(column, f"expected a whole number, got {value!r}")
    return int(number)


def _term(row: Row, column: str, value: str | None, vocabulary: str) -> str | None:
    """An upper-case CDISC term that the field's ConceptMap knows."""
    if value is None:
        return None
    upper = " ".join(value.upper().split())
    known = source_codes(VOCABULARY[vocabulary])
    if upper not in known:
        raise row.error(column, f"{value!r} is not one of: {', '.join(known)}")
    return upper


def _meddra(row: Row, level: str, term: str | None, code_column: str,
            code: str | None) -> MeddraTerm | None:
    if term is None and code is None:
        return None
    if code is not None:
        number = _integer(row, code_column, code)
        code = str(number)
        if not re.fullmatch(r"[0-9]{8}", code):
            raise row.error(code_column, f"expected an 8-digit MedDRA code, got {code!r}")
    return MeddraTerm(level, term, code)


def _date(row: Row, column: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_date(value)
    except DateParseError as exc:
        raise row.error(column, str(exc)) from exc
    return value


def _check_order(row: Row, onset: str | None, end: str | None, end_column: str) -> None:
    if onset and end and is_after(parse_date(onset), parse_date(end)):
        raise row.error(end_column, f"end {end!r} is before the onset {onset!r}")


def _check_criteria(row: Row, serious: bool | None, criteria: dict[str, bool],
                    serious_column: str) -> None:
    """A criterion met on an event marked not serious is a contradiction, not a choice."""
    if serious is False:
        met = [c for c, v in criteria.items() if v and c not in ("AESCAN", "AESOD")]
        if met:
            raise row.error(serious_column, f"N (not serious) but {met[0]} is Y")
