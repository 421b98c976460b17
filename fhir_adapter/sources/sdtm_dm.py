"""CDISC SDTM DM (demographics), joined with DS (disposition) and SUPPDM -> EnrollmentRecord.

XPT or CSV alike (`tabular.read_rows`; numbers are read numerically, so "63.0" in CSV and 63 in
XPT agree). DS and SUPPDM rows attach to the DM row with the same USUBJID. SDTM datasets are
sorted by USUBJID, so the join merges sorted streams and memory stays flat; when DM or a joined
file is not sorted by USUBJID, that file's rows are grouped in memory instead.

What is read: DM USUBJID, SUBJID, STUDYID, SITEID, ARM/ARMCD, ACTARM/ACTARMCD, RFICDTC, RFSTDTC,
RFENDTC, RFPENDTC, DTHFL/DTHDTC, BRTHDTC (its year only), AGE/AGEU, SEX, RACE, ETHNIC, COUNTRY;
DS DSDECOD, DSTERM (the verbatim reason, kept beside DSDECOD), DSCAT, DSSTDTC, DSSEQ; SUPPDM
RACEn (further races of a MULTIPLE-race subject) and the analysis population flags (POPULATIONS:
ITT, SAFETY, EFFICACY, COMPLT8, ... = Y; N is not a membership). DS rows of DSCAT "OTHER EVENT"
(e.g. FINAL LAB VISIT) are not part of the subject's course and are not read. Other SUPPDM
qualifiers are passed on as `unmapped`, so the mapping reports them.

Cross-field checks (rule ids: fhir_adapter.findings), findings or errors:

  check                                      decision  rule / why
  DTHDTC given, DTHFL not Y                  finding   dm-death-date-without-flag: the death
                                                       date is mapped (deceasedDateTime)
  DS DSDECOD DEATH, DTHFL not Y              finding   dm-death-disposition-without-flag: the
                                                       subject is written deceased
  RFSTDTC after RFENDTC                      finding   dm-reference-start-after-end: both kept
                                                       where they map
  RFICDTC after RFSTDTC                      finding   dm-consent-after-start: both kept
  DS/SUPPDM rows of a USUBJID DM lacks       error     no subject to attach them to
  the same USUBJID twice in DM               error     one Patient id for two subjects
  no USUBJID / no STUDYID, DSDECOD missing,  error     required value missing or unparseable:
  a date or number that does not parse,                nothing valid to build from it
  DTHFL not Y/N/blank, DSCAT unknown,
  SUPPDM RDOMAIN not DM
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..dates import DateParseError, ParsedDate, is_after, parse_date
from ..errors import InputError
from ..records import CourseEvent, EnrollmentRecord, Finding, Population
from ..records import EnrollmentItem as Item
from .tabular import Row, columns, read_rows

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DSCAT = {"DISPOSITION EVENT": "disposition", "PROTOCOL MILESTONE": "milestone",
          "OTHER EVENT": None}
_EXTRA_RACE = re.compile(r"RACE[0-9]+")
_NEEDS = {"DS": ("USUBJID", "DSDECOD"), "SUPPDM": ("USUBJID", "QNAM", "QVAL")}
# SUPPDM analysis population flags (SDTMIG 3.x Appendix C: ITT, SAFETY, EFFICACY, PPROT;
# the CDISC pilot's COMPLTnn "completers of week nn"): Y makes the subject a member.
POPULATIONS = re.compile(r"ITT|SAFETY|EFFICACY|PPROT|FULLSET|PKPOP|RANDOM|COMPLT[0-9]+")
_YES_NO = {"Y": True, "N": False}


def read_sdtm(dm: Path, ds: str | Path | None, supp: str | Path | None,
              study: str | None) -> Iterator[Item]:
    """One record (or row error) per DM row, in DM order, then errors for DS/SUPPDM subjects
    that have no DM row."""
    joins = [_Join(Path(p), label) for p, label in ((ds, "DS"), (supp, "SUPPDM")) if p]
    if joins and not _sorted(dm):
        for join in joins:
            join.index()
    previous = None
    for row in read_rows(dm, upper_columns=True):
        key = row.get("USUBJID")
        attached = []
        for join in joins:
            rows, orphans = join.take(key) if key else ([], [])
            yield from orphans
            attached.append(rows)
        if not key:
            yield row.error("USUBJID", "expected the subject id (USUBJID), got nothing")
            continue
        if key == previous:
            yield row.error("USUBJID", f"expected one DM row per subject, {key!r} repeats")
            continue
        previous = key
        try:
            ds_rows = attached[0] if ds else []
            supp_rows = attached[-1] if supp else []
            yield _record(row, ds_rows, supp_rows, study)
        except InputError as exc:
            yield exc
    for join in joins:
        yield from join.leftovers()


class _Join:
    """Rows of DS or SUPPDM, handed out per USUBJID: merged from a sorted stream, or indexed."""

    def __init__(self, path: Path, label: str) -> None:
        missing = [c for c in _NEEDS[label] if c not in {n.upper() for n in columns(path)}]
        if missing:
            raise InputError(str(path), f"not an SDTM {label} file: expected columns "
                             + ", ".join(missing), field_name=missing[0])
        self.path, self.label = path, label
        self._index: dict[str, list[Row]] | None = None
        self._groups = _grouped(read_rows(path, upper_columns=True)) if _sorted(path) else None
        if self._groups is None:
            self.index()
        self._pending = next(self._groups, None) if self._groups else None

    def index(self) -> None:
        """Hold every row in memory, grouped by USUBJID (for files not sorted like DM)."""
        if self._index is not None:
            return
        self._index, self._groups, self._pending = {}, None, None
        for row in read_rows(self.path, upper_columns=True):
            self._index.setdefault(row.get("USUBJID") or "", []).append(row)

    def take(self, key: str) -> tuple[list[Row], list[InputError]]:
        """The rows of subject `key`, and errors for skipped subjects that DM does not have."""
        if self._index is not None:
            return self._index.pop(key, []), []
        orphans = []
        while self._pending and self._pending[0] < key:
            orphans.append(self._orphan(*self._pending))
            self._pending = next(self._groups, None)  # type: ignore[arg-type]
        if self._pending and self._pending[0] == key:
            rows = self._pending[1]
            self._pending = next(self._groups, None)  # type: ignore[arg-type]
            return rows, orphans
        return [], orphans

    def leftovers(self) -> Iterator[InputError]:
        """Errors for subjects of this file that no DM row claimed."""
        if self._index is not None:
            for key, rows in self._index.items():
                yield self._orphan(key, rows)
            return
        while self._pending:
            yield self._orphan(*self._pending)
            self._pending = next(self._groups, None)  # type: ignore[arg-type]

    def _orphan(self, key: str, rows: list[Row]) -> InputError:
        if not key:
            return rows[0].error("USUBJID", "expected the subject id (USUBJID), got nothing")
        return rows[0].error("USUBJID", f"subject {key!r} has {self.label} rows but no DM row")


def _sorted(path: Path) -> bool:
    """True when rows come in USUBJID order (each subject's rows together)."""
    last = ""
    for row in read_rows(path, upper_columns=True):
        key = row.get("USUBJID") or ""
        if key < last:
            return False
        last = key
    return True


def _grouped(rows: Iterator[Row]) -> Iterator[tuple[str, list[Row]]]:
    key, group = None, []
    for row in rows:
        this = row.get("USUBJID") or ""
        if group and this != key:
            yield key or "", group
            group = []
        key = this
        group.append(row)
    if group:
        yield key or "", group


def _record(row: Row, ds_rows: list[Row], supp_rows: list[Row],
            study: str | None) -> EnrollmentRecord:
    v = row.values
    key = study or v.get("STUDYID")
    if not key:
        raise row.error("STUDYID", "expected the study id (STUDYID), or give --study")
    dates = {c: _date(row, c) for c in ("RFICDTC", "RFSTDTC", "RFENDTC", "RFPENDTC", "DTHDTC",
                                         "BRTHDTC")}
    death = (v.get("DTHFL") or "").upper()
    if death not in ("", "Y", "N"):
        raise row.error("DTHFL", f"expected Y or blank, got {v.get('DTHFL')!r}")
    races = [v["RACE"]] if v.get("RACE") else []
    unmapped = []
    populations = []
    for supp in sorted(supp_rows, key=lambda r: r.get("QNAM") or ""):
        qnam = (supp.get("QNAM") or "").upper()
        if not qnam:
            raise supp.error("QNAM", "expected a qualifier name, got nothing")
        if (supp.get("RDOMAIN") or "DM").upper() != "DM":
            raise supp.error("RDOMAIN", f"expected DM, got {supp.get('RDOMAIN')!r}")
        if _EXTRA_RACE.fullmatch(qnam) and supp.get("QVAL"):
            races.append(supp.get("QVAL") or "")
        elif POPULATIONS.fullmatch(qnam):
            flag = (supp.get("QVAL") or "").upper()
            if flag not in _YES_NO:
                raise supp.error("QVAL", f"expected Y or N for population {qnam}, got "
                                 f"{supp.get('QVAL')!r}")
            if _YES_NO[flag]:
                populations.append(Population(qnam, supp.get("QLABEL")))
        else:
            label = supp.get("QLABEL")
            unmapped.append(f"SUPPDM {qnam}" + (f" ({label})" if label else ""))
    birth = dates["BRTHDTC"]
    events = tuple(_events(ds_rows))
    return EnrollmentRecord(
        file=row.file, row=row.number, format="sdtm", study=key, subject_id=v["USUBJID"] or "",
        subject_number=v.get("SUBJID"), site_id=v.get("SITEID"), arm=v.get("ARM"),
        arm_code=v.get("ARMCD"), actual_arm=v.get("ACTARM"), actual_arm_code=v.get("ACTARMCD"),
        consent_date=dates["RFICDTC"], start_date=dates["RFSTDTC"], end_date=dates["RFPENDTC"],
        treatment_end_date=dates["RFENDTC"], events=events, sex=v.get("SEX"),
        birth_year=birth.year if birth else None, age=_number(row, "AGE"),
        age_unit=v.get("AGEU"), races=tuple(races), ethnicity=v.get("ETHNIC"),
        country=v.get("COUNTRY"), death_flag=death == "Y", death_date=dates["DTHDTC"],
        populations=tuple(populations), unmapped=tuple(unmapped),
        findings=_findings(row, dates, death == "Y", events))


def _findings(row: Row, dates: dict[str, ParsedDate | None], died: bool,
              events: tuple[CourseEvent, ...]) -> tuple[Finding, ...]:
    """The cross-field checks of the module docstring that are findings."""
    found = []
    flag = row.get("DTHFL") or "blank"
    if dates["DTHDTC"] and not died:
        found.append(Finding(row.file, row.number, "DTHFL", "dm-death-date-without-flag",
                             f"DTHDTC is {row.get('DTHDTC')} but DTHFL is {flag}"))
    death = next((e for e in events if e.term.upper() == "DEATH"), None)
    if death and not died:
        found.append(Finding(row.file, row.number, "DTHFL", "dm-death-disposition-without-flag",
                             f"{Path(death.file).name} row {death.row} is DEATH but DTHFL is "
                             f"{flag}"))
    for earlier, later, rule in (("RFSTDTC", "RFENDTC", "dm-reference-start-after-end"),
                                 ("RFICDTC", "RFSTDTC", "dm-consent-after-start")):
        first, second = dates[earlier], dates[later]
        if first and second and is_after(first, second):
            found.append(Finding(row.file, row.number, later, rule,
                                 f"{later} {row.get(later)} is before {earlier} "
                                 f"{row.get(earlier)}"))
    return tuple(found)


def _events(rows: list[Row]) -> Iterator[CourseEvent]:
    for row in rows:
        category_text = (row.get("DSCAT") or "DISPOSITION EVENT").upper()
        if category_text not in _DSCAT:
            raise row.error("DSCAT", "expected DISPOSITION EVENT, PROTOCOL MILESTONE or OTHER "
                            f"EVENT, got {row.get('DSCAT')!r}")
        category = _DSCAT[category_text]
        if category is None:
            continue
        term = row.get("DSDECOD")
        if not term:
            raise row.error("DSDECOD", "expected the standardized disposition term, got nothing")
        seq = _number(row, "DSSEQ")
        yield CourseEvent(term, "sdtm", category, _date(row, "DSSTDTC"), row.get("DSTERM"),
                          float(row.number) if seq is None else seq, row.file, row.number)


def _date(row: Row, column: str) -> ParsedDate | None:
    text = row.get(column)
    if not text:
        return None
    try:
        return parse_date(text)
    except DateParseError as exc:
        raise row.error(column, str(exc)) from exc


def _number(row: Row, column: str) -> float | None:
    text = row.get(column)
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        raise row.error(column, f"expected a number, got {text!r}")
    return float(text)
