"""Cross-field checks of one adverse event, for both AE sources (SDTM and our format).

Every cross-field check of the AE sources, and what it is (rule ids: fhir_adapter.findings):

check                                   decision  rule / why
--------------------------------------  --------  ----------------------------------------------
AESER N, an ICH criterion Y             finding   ae-not-serious-criterion-met: non-serious,
  (AESDTH AESLIFE AESHOSP AESDISAB                every flag carried
  AESCONG AESMIE)
AESER blank, an ICH criterion Y         finding   ae-seriousness-blank-criterion-met: written
                                                  serious (the ICH E2A definition)
AESDTH Y, AEOUT given, not FATAL        finding   ae-death-outcome-not-fatal: AEOUT kept
AEOUT FATAL, AESDTH N                   finding   ae-fatal-outcome-death-no: both kept
AEOUT FATAL, AESER N                    finding   ae-fatal-not-serious: both kept
SUPPAE QVAL differs from the AE row     finding   ae-supplemental-conflict: the AE row's value
                                                  (adverse_event_sdtm.py)
AESDTH Y, AEOUT blank                   mapped    outcome FATAL (the joint mapping IG), warning
AEENDTC before AESTDTC                  error     no valid resource: an occurrence Period ending
                                                  before it starts breaks per-1, and leaving the
                                                  end out would drop it in both versions
USUBJID+AESEQ (event_id) twice          error     one resource id for two events: the second
                                                  would overwrite the first (pipeline)

Single-field problems (a missing USUBJID/AESEQ/AETERM/STUDYID, a date or a number that does
not parse, a term outside its CDISC codelist, a MedDRA code that is not 8 digits) stay errors.
"""

from __future__ import annotations

from collections.abc import Callable

from ..records import ICH_CRITERIA, Finding


def ae_findings(file: str, row: int, serious: bool | None, criteria: dict[str, bool],
                outcome: str | None, column: Callable[[str], str]) -> tuple[Finding, ...]:
    """The findings of one event: `criteria` keyed by SDTM flag, `outcome` a CDISC AEOUT
    term; `column(name)` names the source column of AESER, AEOUT and each flag."""
    found: list[Finding] = []

    def add(name: str, rule: str, message: str) -> None:
        found.append(Finding(file, row, column(name), rule, message))

    met = [c for c in ICH_CRITERIA if criteria.get(c)]
    if serious is False and met:
        add("AESER", "ae-not-serious-criterion-met",
            f"{column('AESER')} is N (not serious) but {', '.join(map(column, met))} "
            f"{'is' if len(met) == 1 else 'are'} Y")
    elif serious is None and met:
        add("AESER", "ae-seriousness-blank-criterion-met",
            f"{column('AESER')} is blank but {', '.join(map(column, met))} "
            f"{'is' if len(met) == 1 else 'are'} Y")
    death = criteria.get("AESDTH")
    if death and outcome is not None and outcome != "FATAL":
        add("AEOUT", "ae-death-outcome-not-fatal",
            f"{column('AESDTH')} is Y (resulted in death) but {column('AEOUT')} is {outcome}")
    if outcome == "FATAL" and death is False:
        add("AESDTH", "ae-fatal-outcome-death-no",
            f"{column('AEOUT')} is FATAL but {column('AESDTH')} is N")
    if outcome == "FATAL" and serious is False:
        add("AESER", "ae-fatal-not-serious",
            f"{column('AEOUT')} is FATAL but {column('AESER')} is N (not serious)")
    return tuple(found)
