"""SDTM TS (trial summary) parameters -> the modules of a ClinicalTrials.gov v2 protocolSection.

TS_PARAMETERS below is the field table. Code translations go through ConceptMaps in
mappings/ (sdtm-*.json). What CT.gov has no place for is kept in protocolSection["x-sdtm"]:
objectives, trial types, value codes (TSVALCD), doubtful translations ("inexact"), and every
parameter value not mapped ("unmapped": {TSPARMCD: [values]}, "labels": {TSPARMCD: TSPARM}),
so the study mapper can warn instead of dropping a fact.
"""

from __future__ import annotations

from typing import Any

from ..conceptmaps import Target, translate
from ..ids import NCT_PATTERN
from .sdtm_ts import DATE, NO_LIMIT, Param, ct_gov_age, registry_type

TS_PARAMETERS: dict[str, str] = {
    "TITLE": "identificationModule.officialTitle (and briefTitle unless STITLE)",
    "STITLE": "identificationModule.briefTitle",
    "ACRONYM": "identificationModule.acronym",
    "REGID": "identificationModule.nctId (NCT ids), else secondaryIdInfos",
    "SPONSOR": "identificationModule.organization.fullName, sponsorCollaboratorsModule.leadSponsor",
    "SSTDTC": "statusModule.startDateStruct (ACTUAL)",
    "SENDTC": "statusModule.completionDateStruct (ACTUAL)",
    "INDIC": "conditionsModule.conditions",
    "TDIGRP": "conditionsModule.conditions (after INDIC)",
    "STYPE": "designModule.studyType (ConceptMap sdtm-stype)",
    "TPHASE": "designModule.phases (sdtm-tphase)",
    "RANDOM": "designModule.designInfo.allocation (sdtm-random)",
    "INTMODEL": "designModule.designInfo.interventionModel (sdtm-intmodel)",
    "TINDTP": "designModule.designInfo.primaryPurpose (sdtm-tindtp)",
    "TTYPE": "x-sdtm.trialTypes; primaryPurpose via sdtm-ttype (inexact) only without TINDTP",
    "TBLIND": "designModule.designInfo.maskingInfo.masking (sdtm-tblind)",
    "PLANSUB": "designModule.enrollmentInfo ESTIMATED (x-sdtm.plannedSubjects beside ACTSUB)",
    "ACTSUB": "designModule.enrollmentInfo ACTUAL",
    "TRT": "armsInterventionsModule.interventions",
    "COMPTRT": "armsInterventionsModule.interventions",
    "INTTYPE": "armsInterventionsModule.interventions[].type (sdtm-inttype; one value only)",
    "OUTMSPRI": "outcomesModule.primaryOutcomes",
    "OUTMSSEC": "outcomesModule.secondaryOutcomes",
    "OUTMSEXP": "outcomesModule.otherOutcomes",
    "OBJPRIM": "x-sdtm.objectives (primary): objectives are not outcome measures",
    "OBJSEC": "x-sdtm.objectives (secondary)",
    "OBJEXP": "x-sdtm.objectives (exploratory)",
    "SEXPOP": "eligibilityModule.sex (sdtm-sexpop)",
    "AGEMIN": "eligibilityModule.minimumAge",
    "AGEMAX": "eligibilityModule.maximumAge",
    "AGESPAN": "eligibilityModule.stdAges (sdtm-agespan)",
    "HLTSUBJI": "eligibilityModule.healthyVolunteers",
}

_YES_NO = {"Y": True, "N": False}  # CDISC No Yes Response (C66742); U and NA stay unmapped


class TrialSummary:
    """Builds the protocolSection parts from TS, recording what it used and what it could not."""

    def __init__(self, params: dict[str, list[Param]]) -> None:
        self.params = params
        self.used: set[str] = set()
        self.unmapped: dict[str, list[str]] = {}
        self.inexact: list[dict[str, str]] = []
        self.planned: str | None = None

    # -- access ------------------------------------------------------------------------------
    def values(self, code: str) -> list[str]:
        """Every value of a parameter, which counts as used."""
        self.used.add(code)
        return [p.value for p in self.params.get(code, [])]

    def one(self, code: str) -> str | None:
        """The first value of a single-valued parameter; further values are kept as unmapped."""
        values = self.values(code)
        if len(values) > 1:
            self.keep(code, values[1:])
        return values[0] if values else None

    def keep(self, code: str, values: list[str]) -> None:
        """Record values that found no place in the record."""
        self.unmapped.setdefault(code, []).extend(values)

    def coded(self, code: str, map_id: str, element: str, value: str | None = None,
              single: bool = True) -> list[str]:
        """Translate a parameter's value(s) (or the one `value` given) through a ConceptMap;
        values without a target are kept as unmapped, doubtful targets are noted."""
        if value is not None:
            values = [value]
        elif single:
            first = self.one(code)
            values = [] if first is None else [first]
        else:
            values = self.values(code)
        out: list[str] = []
        for val in values:
            targets = _targets(map_id, val)
            if not targets:
                self.keep(code, [val])
            for target in targets:
                if target.equivalence not in ("equivalent", "equal"):
                    self.inexact.append({
                        "parameter": code, "value": val, "element": element,
                        "code": target.code, "equivalence": target.equivalence,
                        "comment": target.comment or ""})
                if target.code not in out:
                    out.append(target.code)
        return out

    # -- modules -----------------------------------------------------------------------------
    def identification(self, study_id: str) -> dict[str, Any]:
        """identificationModule: ids, sponsor organization, titles."""
        out: dict[str, Any] = {}
        secondary = []
        for param in self.params.get("REGID", []):
            value = param.value.strip()
            if NCT_PATTERN.fullmatch(value.upper()) and "nctId" not in out:
                out["nctId"] = value.upper()
                continue
            info: dict[str, str] = {"id": value, "type": registry_type(value)}
            if param.code_system:
                info["domain"] = param.code_system
            secondary.append(info)
        self.used.add("REGID")
        out["orgStudyIdInfo"] = {"id": study_id}
        if secondary:
            out["secondaryIdInfos"] = secondary
        sponsor = self.one("SPONSOR")
        if sponsor:
            out["organization"] = {"fullName": sponsor}
        title, short = self.one("TITLE"), self.one("STITLE")
        if short or title:
            out["briefTitle"] = short or title
        if title:
            out["officialTitle"] = title
        acronym = self.one("ACRONYM")
        if acronym:
            out["acronym"] = acronym
        return out

    def status(self) -> dict[str, Any]:
        """statusModule: study start and end dates (TS dates are actual dates)."""
        out: dict[str, Any] = {}
        for code, key in (("SSTDTC", "startDateStruct"), ("SENDTC", "completionDateStruct")):
            value = self.one(code)
            if value is None:
                continue
            match = DATE.match(value)  # a time part (…T10:00) is dropped: CT.gov has dates
            if match:
                out[key] = {"date": match.group(0), "type": "ACTUAL"}
            else:
                self.keep(code, [value])
        return out

    def sponsor(self) -> dict[str, Any]:
        """sponsorCollaboratorsModule from SPONSOR (already read by identification)."""
        name = self.params.get("SPONSOR")
        return {"leadSponsor": {"name": name[0].value}} if name else {}

    def conditions(self) -> list[str]:
        """Indications first, then the diagnosis group of the subjects, without repeats."""
        out: list[str] = []
        for value in self.values("INDIC") + self.values("TDIGRP"):
            if value not in out:
                out.append(value)
        return out

    def design(self) -> dict[str, Any]:
        """designModule: type, phases, allocation, model, purpose, masking, enrollment."""
        out: dict[str, Any] = {}
        study_type = self.coded("STYPE", "sdtm-stype", "designModule.studyType")
        if study_type:
            out["studyType"] = study_type[0]
        phases = self.coded("TPHASE", "sdtm-tphase", "designModule.phases", single=False)
        if phases:
            out["phases"] = phases
        info: dict[str, Any] = {}
        for code, map_id, key in (("RANDOM", "sdtm-random", "allocation"),
                                  ("INTMODEL", "sdtm-intmodel", "interventionModel")):
            found = self.coded(code, map_id, f"designModule.designInfo.{key}")
            if found:
                info[key] = found[0]
        purpose = self._primary_purpose()
        if purpose:
            info["primaryPurpose"] = purpose
        masking = self.coded("TBLIND", "sdtm-tblind",
                             "designModule.designInfo.maskingInfo.masking")
        if masking:
            info["maskingInfo"] = {"masking": masking[0]}
        if info:
            out["designInfo"] = info
        enrollment = self._enrollment()
        if enrollment:
            out["enrollmentInfo"] = enrollment
        return out

    def _primary_purpose(self) -> str | None:
        element = "designModule.designInfo.primaryPurpose"
        trial_types = self.values("TTYPE")
        if "TINDTP" in self.params:
            found = self.coded("TINDTP", "sdtm-tindtp", element)
            if found:
                return found[0]
        # TTYPE is what a trial measures, not why it is done: a fallback, and the first
        # (lowest TSSEQ) type that translates is taken; all types stay in x-sdtm.trialTypes.
        for value in trial_types:
            if _targets("sdtm-ttype", value):
                return self.coded("TTYPE", "sdtm-ttype", element, value=value)[0]
        return None

    def _enrollment(self) -> dict[str, Any] | None:
        planned, actual = self.one("PLANSUB"), self.one("ACTSUB")
        if actual is not None and actual.isdigit():
            self.planned = planned  # kept beside the actual count (x-sdtm.plannedSubjects)
            return {"count": int(actual), "type": "ACTUAL"}
        if actual is not None:
            self.keep("ACTSUB", [actual])
        if planned is not None and planned.isdigit():
            return {"count": int(planned), "type": "ESTIMATED"}
        if planned is not None:
            self.keep("PLANSUB", [planned])
        return None

    def interventions(self) -> list[dict[str, Any]]:
        """Investigational and comparative treatments; INTTYPE types them when it is one."""
        kinds = self.values("INTTYPE")
        kind = None
        if len(set(kinds)) == 1:
            found = self.coded("INTTYPE", "sdtm-inttype",
                               "armsInterventionsModule.interventions.type", value=kinds[0])
            kind = found[0] if found else None
        elif kinds:  # several types and no link to the treatments: say so, do not guess
            self.keep("INTTYPE", kinds)
        out: list[dict[str, Any]] = []
        names: list[str] = []
        for code, role in (("TRT", "Investigational therapy or treatment (TS TRT)"),
                           ("COMPTRT", "Comparative treatment (TS COMPTRT)")):
            for name in self.values(code):
                if name in names:
                    continue
                names.append(name)
                item: dict[str, Any] = {"type": kind} if kind else {}
                item.update(name=name, description=role)
                out.append(item)
        return out

    def outcomes(self) -> dict[str, Any]:
        """outcomesModule from the outcome-measure parameters (never from objectives)."""
        out: dict[str, Any] = {}
        for code, key in (("OUTMSPRI", "primaryOutcomes"), ("OUTMSSEC", "secondaryOutcomes"),
                          ("OUTMSEXP", "otherOutcomes")):
            measures = self.values(code)
            if measures:
                out[key] = [{"measure": m} for m in measures]
        return out

    def eligibility(self) -> dict[str, Any]:
        """eligibilityModule fields of TS (the criteria text comes from TI)."""
        out: dict[str, Any] = {}
        healthy = self.one("HLTSUBJI")
        if healthy is not None and healthy.upper() in _YES_NO:
            out["healthyVolunteers"] = _YES_NO[healthy.upper()]
        elif healthy is not None:
            self.keep("HLTSUBJI", [healthy])
        sex = self.coded("SEXPOP", "sdtm-sexpop", "eligibilityModule.sex")
        if sex:
            out["sex"] = sex[0]
        for code, key in (("AGEMIN", "minimumAge"), ("AGEMAX", "maximumAge")):
            value = self.one(code)
            if value is None or NO_LIMIT.fullmatch(value.strip()):
                continue
            age = ct_gov_age(value)
            if age:
                out[key] = age
            else:
                self.keep(code, [value])
        ages = self.coded("AGESPAN", "sdtm-agespan", "eligibilityModule.stdAges", single=False)
        if ages:
            out["stdAges"] = ages
        return out

    def extras(self) -> dict[str, Any]:
        """x-sdtm: objectives, trial types, value codes, and what is left over. Call it last:
        every parameter no earlier step used becomes unmapped here."""
        out: dict[str, Any] = {}
        objectives = [{"type": kind, "text": text}
                      for code, kind in (("OBJPRIM", "primary"), ("OBJSEC", "secondary"),
                                         ("OBJEXP", "exploratory"))
                      for text in self.values(code)]
        if objectives:
            out["objectives"] = objectives
        if "TTYPE" in self.params:
            out["trialTypes"] = self.values("TTYPE")
        if self.planned is not None:
            out["plannedSubjects"] = self.planned
        codes: dict[str, list[dict[str, str]]] = {}
        for code, params in self.params.items():
            for p in params:
                if p.value_code:
                    entry = {"value": p.value, "code": p.value_code, "system": p.code_system,
                             "version": p.code_version}
                    codes.setdefault(code, []).append({k: v for k, v in entry.items() if v})
        if codes:
            out["codes"] = codes
        for code, params in self.params.items():
            if code not in self.used:
                self.keep(code, [p.value for p in params])
        if self.inexact:
            out["inexact"] = self.inexact
        if self.unmapped:
            out["unmapped"] = {c: self.unmapped[c] for c in self.params if c in self.unmapped}
            out["labels"] = {c: self.params[c][0].label for c in out["unmapped"]
                             if self.params[c][0].label}
        return out


def _targets(map_id: str, value: str) -> list[Target]:
    """The usable targets of a code (unmatched/disjoint rows say there is none)."""
    return [t for t in translate(map_id, value)
            if t.code and t.equivalence not in ("unmatched", "disjoint")]
