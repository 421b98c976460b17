"""Data-quality findings: the rules, and the tag that marks a resource mapped from a row with one.

A finding is a source row whose values contradict each other but still make a valid resource:
it is mapped as recorded, reported (file, row, field, rule, message; `--report FILE`), counted
by rule, and each resource made from the row carries `meta.tag` {SYSTEM, rule id}, so
`AdverseEvent?_tag=<SYSTEM>|<rule>` (or `?_tag=<SYSTEM>|` for every rule) finds them for
review. `--strict` makes each finding an error of its row instead.

Rule ids are stable: never renamed or reused (docs/findings.md lists them). Each names the
SDTMIG assumption or conformance check it follows, where one exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .records import Finding

SYSTEM = "https://fhir-adapter.dev/fhir/CodeSystem/data-quality"


@dataclass(frozen=True)
class Rule:
    """One check: its stable id, a short name (the tag's display) and what it means."""

    id: str
    display: str
    definition: str
    basis: str  # the standard's rule or assumption it follows


RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("ae-not-serious-criterion-met", "Not serious, yet a seriousness criterion is met",
         "AESER is N while AESDTH, AESLIFE, AESHOSP, AESDISAB, AESCONG or AESMIE is Y. Mapped "
         "as recorded: seriousness non-serious, every criterion flag in the seriousness-criteria "
         "extension.",
         "SDTMIG AE: AESER is Y when any seriousness criterion is Y (FDA/CDISC AE "
         "seriousness consistency checks)"),
    Rule("ae-seriousness-blank-criterion-met", "Seriousness blank, a criterion is met",
         "AESER is blank while an ICH seriousness criterion is Y. Written serious (the "
         "criterion is an ICH E2A definition of serious), with the criteria.",
         "SDTMIG AE: AESER is expected; the criteria variables qualify a serious event"),
    Rule("ae-death-outcome-not-fatal", "Resulted in death, outcome not fatal",
         "AESDTH is Y while AEOUT is given and is not FATAL. AEOUT is kept as recorded.",
         "SDTMIG AE: AEOUT FATAL goes with AESDTH Y"),
    Rule("ae-fatal-outcome-death-no", "Fatal outcome, death criterion N",
         "AEOUT is FATAL while AESDTH is N. Both are kept as recorded.",
         "SDTMIG AE: AESDTH Y goes with AEOUT FATAL"),
    Rule("ae-fatal-not-serious", "Fatal outcome on an event not serious",
         "AEOUT is FATAL while AESER is N. Both are kept as recorded.",
         "ICH E2A: an event that results in death is serious"),
    Rule("ae-supplemental-conflict", "SUPPAE contradicts the AE row",
         "A SUPPAE qualifier names an AE variable the AE row holds with another value. The AE "
         "row's value is mapped; SUPPAE's is in the message.",
         "SDTMIG 8.4: SUPP-- holds qualifiers the parent domain has no variable for"),
    Rule("dm-death-date-without-flag", "Death date without death flag",
         "DTHDTC is given while DTHFL is not Y. The death date is mapped.",
         "SDTMIG DM: DTHFL is Y when DTHDTC is populated"),
    Rule("dm-death-disposition-without-flag", "Death disposition without death flag",
         "A DS disposition DEATH while DM DTHFL is not Y. The subject is written deceased.",
         "SDTMIG DM/DS: a subject with a DEATH disposition has DTHFL Y"),
    Rule("dm-reference-start-after-end", "Reference start after reference end",
         "RFSTDTC is after RFENDTC. Both are kept where they are mapped; a period whose end "
         "would precede its start leaves the end out.",
         "SDTMIG DM: RFSTDTC on or before RFENDTC (start-before-end checks of --STDTC/--ENDTC)"),
    Rule("dm-consent-after-start", "Informed consent after reference start",
         "RFICDTC is after RFSTDTC. Both are kept as recorded.",
         "SDTMIG DM: informed consent precedes study participation"),
    Rule("enrollment-end-with-ongoing-status", "End date or reason with a status not ended",
         "end_date or end_reason is given while status is not completed, withdrawn, "
         "discontinued or screen-failure. The status is kept; the end date ends the period.",
         "our enrollment format: end_date and end_reason go with an end status"),
    Rule("enrollment-dates-out-of-order", "Enrollment dates out of order",
         "consent_date, enrollment_date, status_date and end_date are not in that order. Each "
         "date is kept where it is mapped; a period whose end would precede its start leaves "
         "the end out.",
         "our enrollment format: consent, enrolment, status and end dates in time order"),
)}


def tags(findings: Iterable[Finding]) -> list[dict[str, str]]:
    """meta.tag codings for a record's findings: one per rule, in rule order."""
    found = {f.rule for f in findings}
    return [{"system": SYSTEM, "code": rule.id, "display": rule.display}
            for rule in RULES.values() if rule.id in found]


def meta(findings: Iterable[Finding]) -> dict[str, Any]:
    """{"meta": {"tag": [...]}} for a record with findings (to follow a resource's id), else
    {}."""
    codings = tags(findings)
    return {"meta": {"tag": codings}} if codings else {}


def code_system() -> dict[str, Any]:
    """The CodeSystem of the rule ids (valid R4 and R5), built from RULES."""
    return {
        "resourceType": "CodeSystem", "id": "data-quality", "url": SYSTEM,
        "name": "FhirAdapterDataQuality", "title": "fhir-adapter data-quality findings",
        "status": "active", "content": "complete", "caseSensitive": True,
        "description": "Rules whose findings mark a resource mapped from source values that "
                       "contradict each other (meta.tag). Mapped as recorded, never dropped.",
        "concept": [{"code": r.id, "display": r.display,
                     "definition": f"{r.definition} Basis: {r.basis}."}
                    for r in RULES.values()],
    }


def check(rule: str) -> Rule:
    """The rule of a rule id (a KeyError names an unknown one: ids are never invented)."""
    return RULES[rule]
