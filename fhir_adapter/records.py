"""The records that sources hand to mapping: the contract between the two, below both.

Records hold source facts only, in one vocabulary: CDISC terms upper-case (MILD, RECOVERED/
RESOLVED, DRUG WITHDRAWN), seriousness criteria keyed by SDTM variable (AESDTH ...), dates as
the source text (adverse events) or parsed ISO 8601 values (enrollments). Each carries its
provenance (file, row) and the data-quality findings its source found in it (`Finding`):
facts that contradict each other but still map, as recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dates import ParsedDate
from .errors import InputError

# The SDTM seriousness criteria flags, in the order they are written.
CRITERIA = ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE", "AESCAN", "AESOD")
ICH_CRITERIA = CRITERIA[:6]  # AESCAN and AESOD are older, non-ICH flags


@dataclass(frozen=True)
class Finding:
    """A data-quality finding: source values that contradict each other, mapped as recorded.
    `rule` is a stable id of fhir_adapter.findings.RULES."""

    file: str
    row: int | None
    field: str | None
    rule: str
    message: str

    def as_dict(self) -> dict[str, object]:
        """The --report line: file, row, field, rule, message."""
        return {"file": self.file, "row": self.row, "field": self.field, "rule": self.rule,
                "message": self.message}

    def error(self) -> InputError:
        """The error this finding is under --strict."""
        return InputError(self.file, f"{self.message} [{self.rule}]", self.row, self.field)

    # The message states the contradiction only: how each rule maps the row is the rule's
    # definition (fhir_adapter.findings.RULES, docs/findings.md), the same for every row.

    def __str__(self) -> str:
        return str(self.error())


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
    treatment_emergent: bool | None = None  # SUPPAE AETRTEM
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class CourseEvent:
    """One step of a subject's course: an SDTM DS row, or the status of our format."""

    term: str  # SDTM DSDECOD, or our status code
    vocabulary: str  # "sdtm" (DSDECOD) | "enrollment" (our status)
    category: str  # "disposition" | "milestone" | "status"
    date: ParsedDate | None
    text: str | None  # our end_reason; SDTM DSTERM (the verbatim reason)
    seq: float  # DSSEQ: order of events on the same date
    file: str
    row: int


@dataclass(frozen=True)
class Population:
    """An analysis population flag of a subject (SDTM SUPPDM ITT, SAFETY, COMPLT8, ...)."""

    code: str  # QNAM
    label: str | None  # QLABEL


@dataclass(frozen=True)
class EnrollmentRecord:
    """One subject of one study, format-neutral; dates stay as parsed ISO 8601 values."""

    file: str
    row: int
    format: str  # "enrollment" | "sdtm"
    study: str
    subject_id: str
    subject_number: str | None = None  # SDTM SUBJID
    site_id: str | None = None
    arm: str | None = None
    arm_code: str | None = None
    actual_arm: str | None = None
    actual_arm_code: str | None = None
    consent_date: ParsedDate | None = None  # RFICDTC / consent_date
    start_date: ParsedDate | None = None  # RFSTDTC / enrollment_date
    end_date: ParsedDate | None = None  # RFPENDTC / end_date
    treatment_end_date: ParsedDate | None = None  # RFENDTC
    events: tuple[CourseEvent, ...] = ()
    end_reason: str | None = None
    sex: str | None = None
    birth_year: int | None = None
    age: float | None = None
    age_unit: str | None = None  # SDTM AGEU; our format: YEARS
    races: tuple[str, ...] = ()
    ethnicity: str | None = None
    country: str | None = None
    death_flag: bool = False
    death_date: ParsedDate | None = None
    populations: tuple[Population, ...] = ()  # the SUPPDM population flags that are Y
    unmapped: tuple[str, ...] = ()  # source facts no field holds, for the mapping's warnings
    findings: tuple[Finding, ...] = ()


EnrollmentItem = EnrollmentRecord | InputError
AdverseEventItem = AdverseEventRecord | InputError
