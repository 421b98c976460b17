"""SDTM AE rows (CSV or XPT, + SUPPAE) -> `AdverseEventRecord`s, for `adverse_event.py`.

Checks run in a fixed order, so a bad row names the same column every time: USUBJID, AESEQ,
SUPPAE, AESER and the criteria flags, AETOXGR, AEACN, AESTDTC/AEENDTC (and their order),
STUDYID, AETERM, MedDRA codes, AESEV, AEDTC, AEOUT, AEREL. Values that repeat row after row
(flags, controlled terms, date pairs) are answered from small tables and caches.

Cross-field checks and which are findings (mapped as recorded) or errors: the table in
`adverse_event_checks.py`. SUPPAE qualifiers: AE variables fill the row's blanks (a different
value is a finding, the AE row's kept), AEACNn are further actions, AETRTEM (treatment
emergent, Y/N) is `treatment_emergent`; any other QNAM is warned about, not mapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..conceptmaps import all_maps, source_codes
from ..dates import DateParseError, is_after, parse_date
from ..errors import InputError
from ..records import CRITERIA, AdverseEventRecord, Finding, MeddraTerm
from .adverse_event_checks import ae_findings
from .suppae import id_value
from .tabular import Row, read_rows

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
# record field -> SDTM variable, the same for every row (records share it: never mutated)
_SDTM_COLUMNS = {f: v for v, f in SDTM_FIELDS.items() if f not in ("criteria", "meddra")}
_FLAGS = {"Y": True, "N": False, "U": None, "NA": None}  # _flag's answers for exact text
_MEDDRA_CODE = re.compile(r"[0-9]{8}")


def sdtm_records(path: Path, names: dict[str, str], supp: dict, study: str | None,
                 warnings: list[str]) -> Iterator[AdverseEventRecord | InputError]:
    """The records (or InputErrors) of an SDTM AE file, one row at a time; file-level
    findings go to `warnings` once the rows are read."""
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
    # SUPPAE fills blanks in `values`: a copy then, so the row stays as read.
    values = dict(row.values) if supp else row.values
    subject = _required(row, values, "USUBJID")
    seq = _integer(row, "AESEQ", values.get("AESEQ"))
    if seq is None:
        raise row.error("AESEQ", "required value is missing (the event key per subject)")
    found: list[Finding] = []
    actions, emergent = _merge_suppae(row, values, supp, subject, seq, used, unknown_qnams,
                                      found)
    serious = _flag(row, "AESER", values.get("AESER"))
    criteria = _criteria(row, values)
    grade = _integer(row, "AETOXGR", values.get("AETOXGR"))
    if grade is not None and not 1 <= grade <= 5:
        raise row.error("AETOXGR", f"expected a CTCAE grade 1-5, got {values['AETOXGR']!r}")
    action = _term(row, "AEACN", values.get("AEACN"), "action")
    if action == "MULTIPLE" and actions:
        action_list = actions
    else:
        action_list = tuple(a for a in (action, *actions) if a)
    onset = _date(row, "AESTDTC", values.get("AESTDTC"))
    end = _date(row, "AEENDTC", values.get("AEENDTC"))
    _check_order(row, onset, end, "AEENDTC")
    outcome = _term(row, "AEOUT", values.get("AEOUT"), "outcome")
    found.extend(ae_findings(row.file, row.number, serious, criteria, outcome, str))
    return AdverseEventRecord(
        file=row.file, row=row.number, study=_study(row, values, study), subject_id=subject,
        event_key=str(seq), verbatim_term=_required(row, values, "AETERM"),
        columns=_SDTM_COLUMNS,
        sponsor_id=values.get("AESPID"),
        meddra=_meddra_terms(row, values),
        categories=tuple(v for c in ("AECAT", "AESCAT") if (v := values.get(c))),
        severity=_term(row, "AESEV", values.get("AESEV"), "severity"), grade=grade,
        serious=serious, criteria=criteria, onset=onset, end=end,
        recorded=_date(row, "AEDTC", values.get("AEDTC")),
        outcome=outcome,
        relatedness=_term(row, "AEREL", values.get("AEREL"), "relatedness"),
        actions=action_list, treatment_emergent=emergent, findings=tuple(found))


def _criteria(row: Row, values: dict) -> dict[str, bool]:
    """The seriousness criteria given (Y or N), in CRITERIA order."""
    criteria = {}
    for column in CRITERIA:
        value = values.get(column)
        if value is not None:
            flag = _FLAGS[value] if value in _FLAGS else _flag(row, column, value)
            if flag is not None:
                criteria[column] = flag
    return criteria


def _meddra_terms(row: Row, values: dict) -> tuple[MeddraTerm, ...]:
    terms = []
    for level, term, code in SDTM_MEDDRA:
        found = _meddra(row, level, values.get(term), code, values.get(code))
        if found:
            terms.append(found)
    return tuple(terms)


def parse_sdtm_row(row: Row, study: str | None = None) -> AdverseEventRecord:
    """One SDTM AE row (no SUPPAE) -> record; InputError naming the row and column."""
    return _sdtm_record(row, {}, study, set(), {})


def _merge_suppae(row: Row, values: dict, supp: dict, subject: str, seq: int, used: set,
                  unknown_qnams: dict[str, int], found: list[Finding]
                  ) -> tuple[tuple[str, ...], bool | None]:
    """Fold this row's SUPPAE qualifiers in: AE variables fill blanks (a conflict is a
    finding), AEACNn are actions, AETRTEM the treatment-emergent flag."""
    if not supp:
        return (), None
    actions: list[tuple[int, str]] = []
    emergent = None
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
            elif qnam == "AETRTEM":
                emergent = _flag(row, "AETRTEM", qval)
            elif qnam in SDTM_FIELDS:
                if values.get(qnam) in (None, qval):
                    values[qnam] = qval
                else:
                    found.append(Finding(row.file, row.number, qnam, "ae-supplemental-conflict",
                                         f"AE has {values[qnam]!r} but SUPPAE says {qval!r}"))
            else:
                unknown_qnams[qnam] = unknown_qnams.get(qnam, 0) + 1
    return tuple(term for _, term in sorted(actions) if term), emergent


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
    if value in _FLAGS:
        return _FLAGS[value]
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
    terms = _terms()
    upper = terms.get((vocabulary, value))
    if upper is None:
        upper = " ".join(value.upper().split())
        if upper not in source_codes(VOCABULARY[vocabulary]):
            known = source_codes(VOCABULARY[vocabulary])
            raise row.error(column, f"{value!r} is not one of: {', '.join(known)}")
        if len(terms) < 4096:
            terms[vocabulary, value] = upper
    return upper


_TERMS: dict[tuple[str, str], str] = {}  # (vocabulary, text as given) -> accepted term
_TERMS_FROM: list[Any] = [None]  # the all_maps() they were accepted by


def _terms() -> dict[tuple[str, str], str]:
    """The accepted terms, kept until the ConceptMaps are re-read (a site's
    FHIR_ADAPTER_MAPPINGS, in tests)."""
    maps = all_maps()
    if _TERMS_FROM[0] is not maps:
        _TERMS.clear()
        _TERMS_FROM[0] = maps
    return _TERMS


def _meddra(row: Row, level: str, term: str | None, code_column: str,
            code: str | None) -> MeddraTerm | None:
    if term is None and code is None:
        return None
    if code is not None:
        number = _integer(row, code_column, code)
        code = str(number)
        if not _MEDDRA_CODE.fullmatch(code):
            raise row.error(code_column, f"expected an 8-digit MedDRA code, got {code!r}")
    return _meddra_term(level, term, code)


@lru_cache(maxsize=8192)  # terms repeat across rows; a MeddraTerm is frozen, so shared
def _meddra_term(level: str, term: str | None, code: str | None) -> MeddraTerm:
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
    if onset and end and _ends_before(onset, end):
        raise row.error(end_column, f"end {end!r} is before the onset {onset!r}")


@lru_cache(maxsize=8192)  # onset/end pairs repeat across subjects
def _ends_before(onset: str, end: str) -> bool:
    return is_after(parse_date(onset), parse_date(end))
