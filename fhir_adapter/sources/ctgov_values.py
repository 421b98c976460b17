"""Legacy ClinicalTrials.gov XML values -> API v2 values: enums, dates, ages, text blocks.

The public.xsd era wrote display strings ("Active, not recruiting", "Phase 1/Phase 2",
"March 3, 2015", "18 Years"); API v2 writes enum names and ISO dates. Most v2 enum names are the
display text upper-cased with every run of other characters turned into "_"; each enum lists
only its exceptions (aliases). Text that fits no value is returned unchanged (whitespace
collapsed), never dropped: the mapping reports it.
"""

from __future__ import annotations

import datetime
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class V2Enum:
    """One API v2 enum: its values and the legacy spellings that are not the mechanical key."""

    values: frozenset[str]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, text: str | None) -> str | None:
        """The v2 value for a legacy display string; unknown text comes back as it was."""
        if text is None or not text.strip():
            return None
        raw = " ".join(text.split())
        key = re.sub(r"[^A-Z0-9]+", "_", raw.upper()).strip("_")
        key = self.aliases.get(key, key)
        return key if key in self.values else raw


def _enum(values: str, **aliases: str) -> V2Enum:
    return V2Enum(frozenset(values.split()), aliases)


# Values: https://clinicaltrials.gov/data-api/about-api/study-data-structure (enum sections);
# legacy spellings: public.xsd and the older public.dtd study_design strings.
STATUS = _enum("ACTIVE_NOT_RECRUITING COMPLETED ENROLLING_BY_INVITATION NOT_YET_RECRUITING "
               "RECRUITING SUSPENDED TERMINATED WITHDRAWN AVAILABLE NO_LONGER_AVAILABLE "
               "TEMPORARILY_NOT_AVAILABLE APPROVED_FOR_MARKETING WITHHELD UNKNOWN",
               UNKNOWN_STATUS="UNKNOWN")
# public.xsd 2017-02-13: "Phase 0" was renamed "Early Phase 1".
PHASE = _enum("NA EARLY_PHASE1 PHASE1 PHASE2 PHASE3 PHASE4", N_A="NA",
              PHASE_0="EARLY_PHASE1", EARLY_PHASE_1="EARLY_PHASE1", PHASE_1="PHASE1",
              PHASE_2="PHASE2", PHASE_3="PHASE3", PHASE_4="PHASE4")
STUDY_TYPE = _enum("INTERVENTIONAL OBSERVATIONAL EXPANDED_ACCESS",
                   OBSERVATIONAL_PATIENT_REGISTRY="OBSERVATIONAL")
ALLOCATION = _enum("RANDOMIZED NON_RANDOMIZED NA", N_A="NA")
INTERVENTION_MODEL = _enum("SINGLE_GROUP PARALLEL CROSSOVER FACTORIAL SEQUENTIAL",
                           SINGLE_GROUP_ASSIGNMENT="SINGLE_GROUP", PARALLEL_ASSIGNMENT="PARALLEL",
                           CROSSOVER_ASSIGNMENT="CROSSOVER", FACTORIAL_ASSIGNMENT="FACTORIAL",
                           SEQUENTIAL_ASSIGNMENT="SEQUENTIAL")
PRIMARY_PURPOSE = _enum("TREATMENT PREVENTION DIAGNOSTIC ECT SUPPORTIVE_CARE SCREENING "
                        "HEALTH_SERVICES_RESEARCH BASIC_SCIENCE DEVICE_FEASIBILITY OTHER",
                        EDUCATIONAL_COUNSELING_TRAINING="ECT")
OBSERVATIONAL_MODEL = _enum("COHORT CASE_CONTROL CASE_ONLY CASE_CROSSOVER ECOLOGIC_OR_COMMUNITY "
                            "FAMILY_BASED DEFINED_POPULATION NATURAL_HISTORY OTHER")
TIME_PERSPECTIVE = _enum("PROSPECTIVE RETROSPECTIVE CROSS_SECTIONAL OTHER")
# Before 2017 masking read "Double Blind (Subject, Caregiver, Investigator, Outcomes Assessor)".
MASKING = _enum("NONE SINGLE DOUBLE TRIPLE QUADRUPLE", OPEN_LABEL="NONE", NONE_OPEN_LABEL="NONE",
                SINGLE_BLIND="SINGLE", DOUBLE_BLIND="DOUBLE", TRIPLE_BLIND="TRIPLE",
                QUADRUPLE_BLIND="QUADRUPLE")
WHO_MASKED = _enum("PARTICIPANT CARE_PROVIDER INVESTIGATOR OUTCOMES_ASSESSOR",
                   SUBJECT="PARTICIPANT", CAREGIVER="CARE_PROVIDER")
ARM_GROUP_TYPE = _enum("EXPERIMENTAL ACTIVE_COMPARATOR PLACEBO_COMPARATOR SHAM_COMPARATOR "
                       "NO_INTERVENTION OTHER")
INTERVENTION_TYPE = _enum("BEHAVIORAL BIOLOGICAL COMBINATION_PRODUCT DEVICE DIAGNOSTIC_TEST "
                          "DIETARY_SUPPLEMENT DRUG GENETIC PROCEDURE RADIATION OTHER")
SEX = _enum("ALL FEMALE MALE", BOTH="ALL")  # "Both" until 2017
OFFICIAL_ROLE = _enum("PRINCIPAL_INVESTIGATOR SUB_INVESTIGATOR STUDY_CHAIR STUDY_DIRECTOR")
# "U.S. Fed" is the XML spelling and "Other U.S. Federal agency" the old site's label for the
# same class (FDA, VA, CDC ...), which v2 calls FED; OTHER_GOV is non-U.S./state government.
AGENCY_CLASS = _enum("NIH FED OTHER_GOV INDIV INDUSTRY NETWORK AMBIG OTHER UNKNOWN",
                     U_S_FED="FED", US_FED="FED", OTHER_U_S_FEDERAL_AGENCY="FED")
RESPONSIBLE_PARTY_TYPE = _enum("SPONSOR PRINCIPAL_INVESTIGATOR SPONSOR_INVESTIGATOR")
SAMPLING_METHOD = _enum("PROBABILITY_SAMPLE NON_PROBABILITY_SAMPLE")
BIOSPEC_RETENTION = _enum("NONE_RETAINED SAMPLES_WITH_DNA SAMPLES_WITHOUT_DNA")
IPD_SHARING = _enum("YES NO UNDECIDED")
IPD_INFO_TYPE = _enum("STUDY_PROTOCOL SAP ICF CSR ANALYTIC_CODE",
                      STATISTICAL_ANALYSIS_PLAN_SAP="SAP", INFORMED_CONSENT_FORM_ICF="ICF",
                      CLINICAL_STUDY_REPORT_CSR="CSR")
DATE_TYPE = _enum("ACTUAL ESTIMATED", ANTICIPATED="ESTIMATED", ESTIMATE="ESTIMATED")
YES_NO = {"YES": True, "NO": False, "ACCEPTS HEALTHY VOLUNTEERS": True}


def yes_no(text: str | None) -> bool | str | None:
    """"Yes"/"No" (and "Accepts Healthy Volunteers") -> bool; other text unchanged."""
    if text is None or not text.strip():
        return None
    raw = " ".join(text.split())
    return YES_NO.get(raw.upper(), raw)


def phases(text: str | None) -> list[str]:
    """"Phase 1/Phase 2" -> ["PHASE1", "PHASE2"]; "N/A" -> ["NA"]."""
    if text is None or not text.strip():
        return []
    if PHASE(text) == "NA":
        return ["NA"]
    return [p for p in (PHASE(part) for part in text.split("/")) if p]


def masking(text: str | None) -> tuple[str | None, list[str]]:
    """"Double (Participant, Investigator)" -> ("DOUBLE", ["PARTICIPANT", "INVESTIGATOR"])."""
    if text is None or not text.strip():
        return None, []
    head, _, inside = text.partition("(")
    level = MASKING(head)
    if level not in MASKING.values:  # not a masking level we know: keep all of the text
        return " ".join(text.split()), []
    if level == "NONE" or not inside:  # "None (Open Label)" names nobody masked
        return level, []
    who = [w for w in (WHO_MASKED(part) for part in inside.rstrip(") ").split(",")) if w]
    return level, who


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_DATE = re.compile(r"([A-Za-z]+)\s+(?:(\d{1,2}),\s*)?(\d{4})")


def iso_date(text: str | None) -> str | None:
    """"December 2022" -> "2022-12", "March 3, 2015" -> "2015-03-03"; other text unchanged."""
    if text is None or not text.strip():
        return None
    raw = " ".join(text.split())
    match = _DATE.fullmatch(raw)
    if not match or match[1].lower() not in _MONTHS:
        return raw
    year, month = int(match[3]), _MONTHS.index(match[1].lower()) + 1
    if match[2] is None:
        return f"{year:04d}-{month:02d}"
    try:
        return datetime.date(year, month, int(match[2])).isoformat()
    except ValueError:  # "February 30, 2015"
        return raw


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s+(year|month|week|day|hour|minute)s?", re.IGNORECASE)
_UNIT_YEARS = {"year": 1.0, "month": 1 / 12, "week": 7 / 365.25, "day": 1 / 365.25,
               "hour": 1 / 8766, "minute": 1 / 525960}


def age(text: str | None) -> str | None:
    """"18 Years" stays "18 Years"; "N/A" (no limit) -> None."""
    if text is None or not text.strip() or text.strip().upper() == "N/A":
        return None
    return " ".join(text.split())


def age_years(text: str | None) -> float | None:
    """An age in years, or None when absent or not of the form "<number> <unit>"."""
    match = _AGE.fullmatch(text.strip()) if text else None
    return float(match[1]) * _UNIT_YEARS[match[2].lower()] if match else None


def std_ages(minimum: str | None, maximum: str | None) -> list[str]:
    """CT.gov's age groups (child < 18, adult 18-64, older adult >= 65) overlapped by the range;
    [] when a limit is given but cannot be read."""
    low = 0.0 if minimum is None else age_years(minimum)
    high = float("inf") if maximum is None else age_years(maximum)
    if low is None or high is None:
        return []
    groups = [("CHILD", 0.0, 18.0), ("ADULT", 18.0, 65.0), ("OLDER_ADULT", 65.0, float("inf"))]
    return [name for name, start, end in groups if low < end and high >= start]


_ITEM = re.compile(r"( *)(-|\d+\.)\s+(\S.*)")


def textblock(text: str | None) -> str | None:
    """A legacy <textblock> (indented, wrapped at ~80 columns, "-  " bullets, blank lines between
    everything) as CT.gov v2 writes it: paragraphs unwrapped and separated by one blank line,
    list items as "* " / "1. " lines with nesting kept by indentation and no blank lines."""
    if text is None or not text.strip():
        return None
    lines = textwrap.dedent(text.expandtabs()).strip("\n").split("\n")
    blocks: list[tuple[bool, str, list[str]]] = []  # (is item, prefix, words)
    stack: list[tuple[int, int]] = []  # open list items: (source indent, output content column)
    previous_blank = True
    for line in lines:
        if not line.strip():
            previous_blank = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        item = _ITEM.fullmatch(line.rstrip()) if previous_blank else None
        if previous_blank:
            # The legacy renderer always starts an item after a blank line, so a wrapped line
            # that happens to begin "2015. " stays part of its paragraph.
            while stack and stack[-1][0] >= indent:
                stack.pop()
            column = stack[-1][1] if stack else 0
            if item:
                marker = "* " if item[2] == "-" else f"{item[2]} "
                stack.append((indent, column + len(marker)))
                blocks.append((True, " " * column + marker, [item[3].strip()]))
            else:
                blocks.append((False, " " * column, [line.strip()]))
        else:
            blocks[-1][2].append(line.strip())
        previous_blank = False
    out = ""
    for index, (is_item, prefix, words) in enumerate(blocks):
        if index:
            out += "\n" if is_item and blocks[index - 1][0] else "\n\n"
        out += prefix + " ".join(words)
    return out
