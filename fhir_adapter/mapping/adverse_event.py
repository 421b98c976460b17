"""AdverseEventRecord -> FHIR AdverseEvent (R4 or R5), following the HL7 FHIR-to-CDISC joint
mapping IG (AE) and the HL7 AE clinical research IG (R5) with its R4 backport.

Field table (source: SDTM AE variable / our column -> R4 4.0.1 ; R5 5.0.0):
- USUBJID|AESEQ / subject_id|event_id -> id (uuid5) + identifier (0..1) ; id + identifier[0]
- AESPID -> not carried, warning (identifier is 0..1) ; identifier[1]
- (fixed) -> actuality actual ; actuality actual, status completed (end date or final
  outcome) else in-progress
- AECAT, AESCAT / category -> category[].text ; same
- AETERM / verbatim_term -> event.text ; code.text
- AELLTCD+AELLT, AEPTCD+AEDECOD, codes only -> event.coding (https://www.meddra.org) ;
  code.coding
- every MedDRA level given, coded or not (LLT, PT, HLT, HLGT, SOC, AEBODSYS when it is not
  the SOC) -> extension meddra-classification {llt, pt, hlt, hlgt, soc, bodySystem}
  .valueCoding ; same. Terms without codes are kept there, never as code-less event codings.
- USUBJID / subject_id -> subject = Patient (contract id) ; same
- STUDYID or --study / study_id -> study = ResearchStudy (contract id) ; same
- AESTDTC / onset_date -> date ; occurrencePeriod.start
- AEENDTC / end_date -> extension xver AdverseEvent.occurrence valuePeriod {start, end} ;
  occurrencePeriod.end
- AEDTC / recorded_date -> recordedDate ; recordedDate
- AESER / serious -> seriousness Serious|Non-serious ; seriousness serious|non-serious
- AESDTH, AESLIFE, AESHOSP, AESDISAB, AESCONG, AESMIE (+ AESCAN, AESOD) / criteria columns,
  serious events, and events with a criterion Y however AESER reads -> extension (backport)
  seriousness-criteria {criterionCode (NCIt), criterionPresent} ; extension (ae-research)
  seriousness-criteria, same shape
- SUPPAE AETRTEM -> extension treatment-emergent valueBoolean (ours, TREATMENT_EMERGENT) ; same
- AESEV / severity -> severity ; extension ae-severity
- AETOXGR / ctcae_grade -> extension (backport) ae-grade (NCIt) ; extension ae-grade (NCIt)
- AEOUT / outcome; AESDTH=Y with blank AEOUT -> FATAL -> outcome (adverse-event-outcome) ;
  outcome[] (NCIt codes of the THO clinical-research outcomes)
- AEREL / relatedness, towards --intervention / intervention -> suspectEntity {instance =
  Medication, causality.assessment (NCIt)} ; suspectEntity {instanceCodeableConcept (or the
  ResearchStudy when unnamed), causality.entityRelatedness (NCIt)}
- AEACN (+ SUPPAE AEACNn) / action_taken -> extension (backport) mitigating-action {item} ;
  mitigatingAction[].itemCodeableConcept
- expected -> extension (backport) expected-in-research-study ; expectedInResearchStudy

(backport) = HL7 AE clinical research R4 backport IG 1.0.1 extensions, (ae-research) = the R5
IG 1.0.1 extensions (BACKPORT, AE_RESEARCH below); xver = the R5-in-R4 cross-version extension.
- data-quality findings of the record (fhir_adapter.findings) -> meta.tag {data-quality
  system, rule id} ; same

Code translations are the sdtm-ae*.json ConceptMaps. Never invented: a grade from a severity
(or back), a seriousness from nothing, a MedDRA coding without a code. Never corrected: values
that contradict each other (AESER N with AESDTH Y, AEOUT FATAL with AESDTH N) are written as
recorded; the source reports them as findings and the event is tagged for review. Times
without a UTC offset get `timezone` or keep their date (fhir_adapter.dates); every such choice
is a warning.
Why Patient and not ResearchSubject as subject in R5 (the AE research IG allows both): every
mapping of this project and every R4 consumer joins on Patient; the ResearchSubject links the
same Patient to the study.
"""

from __future__ import annotations

from typing import Any

from .. import findings, ids
from ..dates import parse_date, to_fhir_datetime
from ..fhirversion import FhirVersion
from ..records import AdverseEventRecord
from . import Mapped
from .adverse_event_codes import AE_RESEARCH, BACKPORT, ICH_CRITERIA, Codes

__all__ = ["AE_RESEARCH", "BACKPORT", "MEDDRA_EXT", "TREATMENT_EMERGENT", "XVER_OCCURRENCE",
           "map_adverse_event", "medication"]

MEDDRA = "https://www.meddra.org"
XVER_OCCURRENCE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-AdverseEvent.occurrence"
MEDDRA_EXT = "https://fhir-adapter.dev/fhir/StructureDefinition/meddra-classification"
# SUPPAE AETRTEM: no HL7 element or IG extension says "treatment emergent" (began or worsened
# after the first dose), so ours: valueBoolean, on AdverseEvent in R4 and R5.
TREATMENT_EMERGENT = "https://fhir-adapter.dev/fhir/StructureDefinition/treatment-emergent"
FINAL_OUTCOMES = {"RECOVERED/RESOLVED", "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL"}


def map_adverse_event(record: AdverseEventRecord, version: FhirVersion,
                      timezone: str | None = None, intervention: str | None = None) -> Mapped:
    """One adverse event -> [AdverseEvent] (+ the study intervention's Medication in R4)."""
    out = Mapped()
    system = ids.subject_system(record.study)
    key = f"{record.subject_id}|{record.event_key}"
    ae: dict[str, Any] = {"resourceType": "AdverseEvent",
                          "id": ids.resource_id("AdverseEvent", system, key),
                          **findings.meta(record.findings)}
    identifiers = [{"system": f"{system}:adverse-event", "value": key}]
    if record.sponsor_id:
        if version == "R5":
            identifiers.append({"system": f"{system}:aespid",
                                "value": f"{record.subject_id}|{record.sponsor_id}"})
        else:
            out.warnings.append("AESPID is not carried in R4 (AdverseEvent.identifier is 0..1 "
                                "and holds the subject|sequence key)")
    onset = _datetime(record, "onset", timezone, out)
    end = _datetime(record, "end", timezone, out)
    recorded = _datetime(record, "recorded", timezone, out)
    serious = _serious(record, out)
    outcome = _outcome(record, out)
    parts = Codes(record, version, out)
    name = record.intervention or intervention
    study_ref = {"reference": f"ResearchStudy/{ids.study_resource_id(record.study)}"}
    subject = {"reference": f"Patient/{ids.resource_id('Patient', system, record.subject_id)}"}
    categories = [{"text": c} for c in record.categories]
    event = _event(record)
    # Elements are set in the order of their version's StructureDefinition, and only when
    # present (not None, [] or {}): the JSON bytes depend on it. The two branches stay apart
    # though their heads look alike: R5 puts status between identifier and actuality, makes
    # identifier a list (0..1 in R4) and renames event to code, so a shared helper would take
    # each difference as a parameter and hide the very order it has to keep.
    if version == "R4":
        ext = []
        if end:
            ext.append({"url": XVER_OCCURRENCE, "valuePeriod": _period(onset, end)})
        ext += parts.grade(BACKPORT) + parts.criteria(BACKPORT, serious)
        if record.expected is not None:
            ext.append({"url": BACKPORT + "expected-in-research-study",
                        "valueBoolean": record.expected})
        ext += [{"url": BACKPORT + "mitigating-action",
                 "extension": [{"url": "item", "valueCodeableConcept": cc}]}
                for cc in parts.actions()]
        ext += _meddra_extension(record) + _emergent(record)
        if ext:
            ae["extension"] = ext
        ae["identifier"] = identifiers[0]
        ae["actuality"] = "actual"
        if categories:
            ae["category"] = categories
        if event:
            ae["event"] = event
        ae["subject"] = subject
        if onset is not None:
            ae["date"] = onset
        if recorded is not None:
            ae["recordedDate"] = recorded
        _put(ae, "seriousness", parts.seriousness(serious))
        _put(ae, "severity", parts.severity())
        _put(ae, "outcome", parts.outcome(outcome))
        _put(ae, "suspectEntity", _suspect_r4(record, name, parts, out))
        ae["study"] = [study_ref]
    else:
        ext = (parts.severity_extension() + parts.grade(AE_RESEARCH)
               + parts.criteria(AE_RESEARCH, serious) + _meddra_extension(record)
               + _emergent(record))
        final = bool(end) or outcome in FINAL_OUTCOMES
        outcome_cc = parts.outcome(outcome)
        if ext:
            ae["extension"] = ext
        ae["identifier"] = identifiers
        ae["status"] = "completed" if final else "in-progress"
        ae["actuality"] = "actual"
        if categories:
            ae["category"] = categories
        if event:
            ae["code"] = event
        ae["subject"] = subject
        _put(ae, "occurrencePeriod", _period(onset, end))
        if recorded is not None:
            ae["recordedDate"] = recorded
        _put(ae, "seriousness", parts.seriousness(serious))
        if outcome_cc:
            ae["outcome"] = [outcome_cc]
        ae["study"] = [study_ref]
        if record.expected is not None:
            ae["expectedInResearchStudy"] = record.expected
        _put(ae, "suspectEntity", _suspect_r5(record, name, parts, study_ref))
        _put(ae, "mitigatingAction", [{"itemCodeableConcept": cc} for cc in parts.actions()])
    out.resources.append(ae)
    if version == "R4" and name:
        out.resources.append(medication(record.study, name))
    return out


def _put(resource: dict[str, Any], element: str, value: dict | list | None) -> None:
    """Set an element that may be absent (None) or empty ([] or {}: left out)."""
    if value:
        resource[element] = value


def medication(study: str, name: str) -> dict[str, Any]:
    """The R4 Medication standing for a study intervention (contract id, code.text = name)."""
    system, value = ids.study_key(study)
    return {"resourceType": "Medication",
            "id": ids.resource_id("Medication", system, f"{value}|{name}"),
            "code": {"text": name}}


def _emergent(record: AdverseEventRecord) -> list[dict]:
    if record.treatment_emergent is None:
        return []
    return [{"url": TREATMENT_EMERGENT, "valueBoolean": record.treatment_emergent}]


def _serious(record: AdverseEventRecord, out: Mapped) -> bool | None:
    if record.serious is not None:
        return record.serious
    if any(record.criteria.get(c) for c in ICH_CRITERIA):
        return True  # the source's finding ae-seriousness-blank-criterion-met says so
    out.warnings.append(f"{_col(record, 'serious')} not given: no seriousness written")
    return None


def _outcome(record: AdverseEventRecord, out: Mapped) -> str | None:
    """AEOUT, or FATAL from AESDTH=Y when AEOUT is blank (joint mapping IG); a contradiction
    keeps AEOUT (the source reported it as a finding)."""
    if record.outcome is None and record.criteria.get("AESDTH"):
        out.warnings.append(f"{_col(record, 'outcome')} is blank and the event resulted in "
                            "death: outcome fatal")
        return "FATAL"
    return record.outcome


def _datetime(record: AdverseEventRecord, name: str, timezone: str | None,
              out: Mapped) -> str | None:
    value = getattr(record, name)
    if value is None:  # to_fhir_datetime(None) is (None, None): nothing to say
        return None
    text, note = to_fhir_datetime(value, timezone)
    if note:
        out.warnings.append(f"{_col(record, name)} {note}")
    elif value and timezone:
        parsed = parse_date(value)
        if parsed.minute is not None and parsed.offset is None:
            out.warnings.append(f"{_col(record, name)} has a time of day without UTC offset: "
                                f"placed in timezone {timezone}")
    return text


def _suspect_r4(record: AdverseEventRecord, name: str | None, parts: Codes,
                out: Mapped) -> list[dict] | None:
    related = parts.relatedness()
    if not related and not name:
        return None
    if name:
        med = medication(record.study, name)
        instance = {"reference": f"Medication/{med['id']}", "display": name}
    else:
        out.warnings.append("no intervention name (--intervention or the intervention column): "
                            "R4 suspectEntity.instance names no resource")
        instance = {"display": "study intervention (not named in the source)"}
    entity: dict[str, Any] = {"instance": instance}
    if related:
        entity["causality"] = [{"assessment": related}]
    return [entity]


def _suspect_r5(record: AdverseEventRecord, name: str | None, parts: Codes,
                study_ref: dict) -> list[dict] | None:
    related = parts.relatedness()
    if not related and not name:
        return None
    # Without a name the suspect is "what this study gave": the R5 instance may be the study.
    entity: dict[str, Any] = ({"instanceCodeableConcept": {"text": name}} if name
                              else {"instanceReference": study_ref})
    if related:
        entity["causality"] = {"entityRelatedness": related}
    return [entity]


def _event(record: AdverseEventRecord) -> dict:
    codings: list[dict] = []
    for term in record.meddra:
        # An LLT that is its own PT has the PT's code: one coding, not two.
        if term.level in ("llt", "pt") and term.code and all(
                c["code"] != term.code for c in codings):
            codings.append(_meddra_coding(term.code, term.term))
    event: dict[str, Any] = {"coding": codings} if codings else {}
    if record.verbatim_term is not None:
        event["text"] = record.verbatim_term
    return event


def _meddra_extension(record: AdverseEventRecord) -> list[dict]:
    terms = record.meddra
    if not terms:
        return []
    soc = body = None
    for at, term in enumerate(terms):  # the first SOC and the first body system
        if term.level == "soc" and soc is None:
            soc = term
        elif term.level == "bodySystem" and body is None:
            body, body_at = term, at
    if soc and body and (soc.term, soc.code) == (body.term, body.code):
        # AEBODSYS repeats the primary SOC: nothing is lost. (Only body itself can be the
        # first term equal to it: any equal term is a body system too.)
        terms = [*terms[:body_at], *terms[body_at + 1:]]
    return [{"url": MEDDRA_EXT, "extension": [
        {"url": t.level, "valueCoding": _meddra_coding(t.code, t.term)} for t in terms]}]


def _meddra_coding(code: str | None, term: str | None) -> dict:
    coding = {"system": MEDDRA}
    if code is not None:
        coding["code"] = code
    if term is not None:
        coding["display"] = term
    return coding


def _period(start: str | None, end: str | None) -> dict | None:
    period = {}
    if start is not None:
        period["start"] = start
    if end is not None:
        period["end"] = end
    return period or None


def _col(record: AdverseEventRecord, name: str) -> str:
    return record.columns.get(name, name)
