"""Adverse event sources -> `AdverseEventRecord`s: CDISC SDTM AE (+ SUPPAE), CSV or XPT, and our
own adverse-event format (CSV, JSON, JSON Lines; `adverse_event_format.py`). SDTM rows are
read by `adverse_event_sdtm.py`.

The format is told from the columns: SDTM when the file has USUBJID and AETERM, ours when it
has subject_id and verbatim_term. Rows stream one at a time; SUPPAE is read into memory first
(one dict entry per supplemental qualifier). A bad row becomes an `InputError` in the stream
(file, row, column, what was expected) so a caller can stop or skip it; a bad file raises.

Records (`fhir_adapter.records`) hold source facts only, in one vocabulary: CDISC terms
upper-case, seriousness criteria keyed by SDTM variable (AESDTH ...), dates as the source text
(checked by `fhir_adapter.dates`), and the data-quality findings of the row
(`adverse_event_checks.py`). Nothing FHIR-specific happens here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..records import CRITERIA, AdverseEventRecord, MeddraTerm  # noqa: F401 (re-exported)
from .adverse_event_sdtm import VOCABULARY, parse_sdtm_row, sdtm_records  # noqa: F401
from .suppae import read_suppae
from .tabular import columns, is_xpt


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
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    warnings: list[str] = []
    if is_xpt(path) or _looks_tabular(path):
        names = {c.upper(): c for c in columns(path)}
        if "USUBJID" in names and "AETERM" in names:
            supp = read_suppae(Path(supplemental), warnings) if supplemental else {}
            return AdverseEventSource(path, "sdtm", sdtm_records(path, names, supp, study,
                                                                  warnings), warnings)
        if supplemental:
            raise InputError(str(supplemental), "--supplemental (SUPPAE) goes with an SDTM AE file")
        if "subject_id" in columns(path):
            return _format_file(path, "csv", study, warnings)
        raise InputError(str(path), "cannot tell the format: expected SDTM AE columns (USUBJID, "
                         "AETERM, AESEQ, ...) or fhir-adapter columns (subject_id, event_id, "
                         "verbatim_term, ...)")
    if supplemental:
        raise InputError(str(supplemental), "--supplemental (SUPPAE) goes with an SDTM AE file")
    return _format_file(path, "json", study, warnings)


def _format_file(path: Path, kind: str, study: str | None, warnings: list[str]
                 ) -> AdverseEventSource:
    # Imported here: it loads jsonschema, which SDTM input does without (50 ms a process).
    from .adverse_event_format import open_format_file

    found, records = open_format_file(path, kind, study)
    return AdverseEventSource(path, found, records, warnings)


def _looks_tabular(path: Path) -> bool:
    """CSV unless the first non-blank character opens JSON."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return not head.startswith((b"[", b"{"))
