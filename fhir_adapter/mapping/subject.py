"""Enrollment record -> a de-identified Patient and a ResearchSubject, FHIR R4 or R5. Pure.

Field table (SDTM DM/DS/SUPPDM | our format -> FHIR, R4 and R5 unless said):
  USUBJID | subject_id        -> Patient.id and ResearchSubject.id (ids.resource_id over
                                 ids.subject_system(study)); identifier {use official,
                                 system ids.subject_system(study)} on both
  SUBJID                      -> identifier {use secondary, system <subject system>:subjid}
  STUDYID | study, --study    -> ResearchSubject.study = ResearchStudy/<ids.study_resource_id>
  SITEID | site_id            -> ResearchSubject.extension study-site: valueIdentifier
                                 {system urn:fhir-adapter:site:<study>, value}
  SEX | sex                   -> Patient.gender (ConceptMap sdtm-sex-to-administrative-gender)
  BRTHDTC (year) | birth_year -> Patient.birthDate, the year only; left out when it implies an
                                 age of 90 or more, at `today` or at entry (Safe Harbor)
  AGE + AGEU | age            -> Patient.extension age-at-enrollment: valueAge (UCUM unit,
                                 ConceptMap sdtm-ageu-to-ucum); over 89 years: ">= 90 years"
  RACE, SUPPDM RACEn | race   -> Patient.extension us-core-race: ombCategory (ConceptMap
                                 sdtm-race-to-omb-race), text = the source terms
  ETHNIC | ethnicity          -> Patient.extension us-core-ethnicity (ConceptMap
                                 sdtm-ethnic-to-omb-ethnicity), text = the source term
  COUNTRY | country           -> Patient.address[0].country (no other address part, ever)
  DTHDTC, DTHFL, DS DEATH     -> Patient.deceasedDateTime (the year only) or deceasedBoolean
  ARM | arm                   -> R4 assignedArm = arm name;
                                 R5 assignedComparisonGroup = ids.arm_link_id(arm name)
  ACTARM | actual_arm         -> R4 actualArm; R5 actualComparisonGroup (same rule)
  RFICDTC, DS INFORMED CONSENT OBTAINED | consent_date
                              -> period.start; R5 progress {screening, informedConsentSigned}
  RFSTDTC | enrollment_date   -> period.start when there is no consent date;
                                 R5 progress {on-study, reason enrolled}
  DS DSDECOD/DSTERM/DSSTDTC/DSSEQ | status, status_date, end_reason
                              -> R4 status = the state after the latest event; R5 progress
                                 entries: subjectState, milestone, reason, startDate, endDate
                                 (= the next state's start), by ConceptMap (subject_course)
  RFPENDTC | end_date, else the final disposition's date, else RFENDTC
                              -> period.end (only once the course has ended)
  data-quality findings       -> meta.tag {data-quality system, rule id} on both resources

Decisions:
- No name, MRN, address line, telecom or full birth date is ever produced. The subject id is
  the study's pseudonym (USUBJID), not derived from patient data.
- Ages over 89 are written only as the category "90 or older" (Age 90 with comparator >=).
  With only AGE known no birth year is derived (it would be a guess of +-1 year).
- Screen failures are subjects: R4 status ineligible. SDTM's pseudo-arms (ARMCD SCRNFAIL "Screen
  Failure", NOTASSGN "Not Assigned", NOTTRT "Not Treated", UNPLAN "Unplanned Treatment") are not
  arms of the study, so no assignedArm/actualArm is written for them (UNPLAN is warned about).
- R4 consent (Reference(Consent)) is left out: there is no Consent resource; the consent date is
  period.start (and an R5 progress entry).
- Dates keep their precision; times of day without an offset get `timezone` or are cut to the
  date (fhir_adapter.dates). With `deidentify_dates`, period and progress dates keep the year.
- SDTM DSTERM (the verbatim reason) is the text of the R5 progress reason, beside the coded
  DSDECOD (the text is DSDECOD when DSTERM is blank). R4 has no place for a reason: the
  status carries the state only.
- Analysis populations (SUPPDM ITT, SAFETY, ...) are Groups of the study (mapping.population),
  made once every subject is read (pipeline.enrollments).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .. import findings, ids
from ..conceptmaps import translate
from ..dates import ParsedDate, is_after, to_fhir_datetime
from ..fhirversion import FhirVersion
from ..records import EnrollmentRecord
from . import Mapped
from .subject_course import (
    DISPLAY,
    END_STATES,
    MILESTONE,
    R5_STATE,
    REASON,
    Step,
    course,
    status,
)

BASE = "https://fhir-adapter.dev/fhir/StructureDefinition/"
SITE_EXTENSION = BASE + "study-site"
AGE_EXTENSION = BASE + "age-at-enrollment"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
UCUM = "http://unitsofmeasure.org"
STATE_TYPE = "http://terminology.hl7.org/CodeSystem/research-subject-state-type"
# SDTMIG 3.2 DM assumptions: pseudo-arm codes for subjects not assigned / not treated.
PSEUDO_ARMS = {"SCRNFAIL": "screen failure", "NOTASSGN": "not assigned",
               "NOTTRT": "not treated", "UNPLAN": "unplanned treatment"}
_YEARS_PER = {"a": 1.0, "mo": 1 / 12, "wk": 7 / 365.25, "d": 1 / 365.25, "h": 1 / 8766}
FIELDS = {
    "sdtm": {"consent": "RFICDTC", "start": "RFSTDTC", "end": "RFPENDTC", "event": "DSSTDTC",
             "treatment_end": "RFENDTC"},
    "enrollment": {"consent": "consent_date", "start": "enrollment_date", "end": "end_date",
                   "event": "status_date", "treatment_end": "end_date"},
}


def map_subject(record: EnrollmentRecord, version: FhirVersion, *, today: date,
                timezone: str | None = None, deidentify_dates: bool = False) -> Mapped:
    """One subject -> [Patient, ResearchSubject], valid FHIR `version`, with warnings for
    every source fact left out. `today` is when the output is made (for the 90+ rule)."""
    out = Mapped()
    warn: list[str] = []
    fields = FIELDS[record.format]
    subject_system = ids.subject_system(record.study)
    patient_id = ids.resource_id("Patient", subject_system, record.subject_id)
    identifiers = [{"use": "official", "system": subject_system, "value": record.subject_id}]
    if record.subject_number and record.subject_number != record.subject_id:
        identifiers.append({"use": "secondary", "system": subject_system + ":subjid",
                            "value": record.subject_number})
    steps = course(record, version, fields, warn)

    def when(value: ParsedDate | None, field: str) -> str | None:
        if value is None:
            return None
        text, note = ((value.year_text, None) if deidentify_dates
                      else to_fhir_datetime(value, timezone))
        if note or text is None:
            warn.append(f"{field} {note or 'has no known year: not carried'}")
        return text

    patient = _patient(record, patient_id, identifiers, steps, today, warn)
    subject: dict[str, Any] = {
        "resourceType": "ResearchSubject",
        "id": ids.resource_id("ResearchSubject", subject_system, record.subject_id),
        **findings.meta(record.findings)}
    if record.site_id:
        _, value = ids.study_key(record.study)
        subject["extension"] = [{"url": SITE_EXTENSION, "valueIdentifier": {
            "system": f"urn:fhir-adapter:site:{ids.slug(value)}", "value": record.site_id}}]
    subject["identifier"] = identifiers
    state = status(steps)
    if state is None:
        state = "on-study" if _arm(record.actual_arm, record.actual_arm_code, warn) else "candidate"
        warn.append(f"no consent, enrolment or disposition: status taken as {state}")
        steps = [Step(None, "", state, DISPLAY[state], None, None, None)]
    if version == "R4":
        subject["status"] = state
    else:
        subject["status"] = "active"
        subject["progress"] = _progress(steps, when)
    period = _period(record, steps, fields, when, warn)
    if period:
        subject["period"] = period
    subject["study"] = {"reference": f"ResearchStudy/{ids.study_resource_id(record.study)}"}
    subject["individual" if version == "R4" else "subject"] = {
        "reference": f"Patient/{patient_id}"}
    arm = _arm(record.arm, record.arm_code, warn)
    actual = _arm(record.actual_arm, record.actual_arm_code, warn)
    if version == "R4":
        subject.update({k: v for k, v in (("assignedArm", arm), ("actualArm", actual)) if v})
    else:
        subject.update({k: ids.arm_link_id(v) for k, v in
                        (("assignedComparisonGroup", arm), ("actualComparisonGroup", actual)) if v})
    warn.extend(f"{fact}: not mapped" for fact in record.unmapped)
    out.resources = [patient, subject]
    out.warnings = list(dict.fromkeys(warn))
    return out


def _patient(record: EnrollmentRecord, patient_id: str, identifiers: list[dict[str, Any]],
             steps: list[Step], today: date, warn: list[str]) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id,
                               **findings.meta(record.findings)}
    extensions = [e for e in (_race(record, warn), _ethnicity(record, warn)) if e]
    age = _age(record, warn)
    if age:
        extensions.append({"url": AGE_EXTENSION, "valueAge": age})
    if extensions:
        patient["extension"] = extensions
    patient["identifier"] = identifiers
    if record.sex:
        gender = _code("sdtm-sex-to-administrative-gender", record.sex)
        if gender:
            patient["gender"] = gender
        else:
            warn.append(f"SEX {record.sex!r} is not in ConceptMap "
                        "sdtm-sex-to-administrative-gender: gender not carried")
    if record.birth_year:
        age_years = _years(age)
        if today.year - record.birth_year >= 90 or (age_years is not None and age_years > 89):
            warn.append("birth year not carried: it implies an age of 90 or more "
                        "(HIPAA Safe Harbor)")
        else:
            patient["birthDate"] = f"{record.birth_year:04d}"
    died = any(s.reason and s.reason.code == "death" for s in steps)
    if record.death_date and record.death_date.year:
        patient["deceasedDateTime"] = record.death_date.year_text
    elif record.death_flag or died:
        patient["deceasedBoolean"] = True
    if record.country:
        patient["address"] = [{"country": record.country}]
    return patient


def _code(map_id: str, source: str) -> str | None:
    return next((t.code for t in translate(map_id, source) if t.code), None)


def _race(record: EnrollmentRecord, warn: list[str]) -> dict[str, Any] | None:
    if not record.races:
        return None
    codings: list[dict[str, str]] = []
    for race in record.races:
        targets = translate("sdtm-race-to-omb-race", race)
        if not targets:
            warn.append(f"RACE {race!r} is not in ConceptMap sdtm-race-to-omb-race: kept as text")
        codings += [t.coding() for t in targets if t.code and t.coding() not in codings]
    if len(codings) > 1:
        # US Core us-core-23: UNK/ASKU only on their own.
        codings = [c for c in codings if c["code"] not in ("UNK", "ASKU")] or codings[:1]
    parts = [{"url": "ombCategory", "valueCoding": c} for c in codings[:5]]
    parts.append({"url": "text", "valueString": ", ".join(record.races)})
    return {"url": US_CORE_RACE, "extension": parts}


def _ethnicity(record: EnrollmentRecord, warn: list[str]) -> dict[str, Any] | None:
    if not record.ethnicity:
        return None
    targets = [t for t in translate("sdtm-ethnic-to-omb-ethnicity", record.ethnicity)]
    if not targets:
        warn.append(f"ETHNIC {record.ethnicity!r} is not in ConceptMap "
                    "sdtm-ethnic-to-omb-ethnicity: kept as text")
    parts = [{"url": "ombCategory", "valueCoding": t.coding()} for t in targets[:1] if t.code]
    parts.append({"url": "text", "valueString": record.ethnicity})
    return {"url": US_CORE_ETHNICITY, "extension": parts}


def _age(record: EnrollmentRecord, warn: list[str]) -> dict[str, Any] | None:
    if record.age is None:
        return None
    unit = next((t for t in translate("sdtm-ageu-to-ucum", record.age_unit or "") if t.code),
                None)
    if unit is None or unit.code is None:
        warn.append(f"AGE has unit {record.age_unit!r}, not in ConceptMap sdtm-ageu-to-ucum: "
                    "age not carried")
        return None
    if record.age * _YEARS_PER[unit.code] > 89:
        # HIPAA Safe Harbor: ages over 89 only as the category "90 or older".
        return {"value": 90, "comparator": ">=", "unit": "years", "system": UCUM, "code": "a"}
    value = int(record.age) if float(record.age).is_integer() else record.age
    return {"value": value, "unit": unit.display, "system": UCUM, "code": unit.code}


def _years(age: dict[str, Any] | None) -> float | None:
    return None if age is None else age["value"] * _YEARS_PER[age["code"]]


def _arm(name: str | None, code: str | None, warn: list[str]) -> str | None:
    """The arm name, unless it is one of SDTM's pseudo-arms (not an arm of the study)."""
    if not name:
        return None
    pseudo = (code or "").upper() in PSEUDO_ARMS or name.casefold() in PSEUDO_ARMS.values()
    if not pseudo:
        return name
    if (code or "").upper() == "UNPLAN" or name.casefold() == PSEUDO_ARMS["UNPLAN"]:
        warn.append(f"arm {name!r} is not an arm of the study: not carried")
    return None


def _progress(steps: list[Step], when: Any) -> list[dict[str, Any]]:
    """R5 progress: a Milestone entry per milestone reached, an Enrollment entry per change of
    state; each state ends when the next one starts."""
    entries: list[dict[str, Any]] = []
    last_state: dict[str, Any] | None = None
    for step in steps:
        start = when(step.date, step.field)
        if step.milestone:
            entry = {"type": _concept(STATE_TYPE, "Milestone", "Milestone status"),
                     "milestone": _concept(MILESTONE, step.milestone.code or "",
                                           step.milestone.display)}
            entries.append(entry | ({"startDate": start} if start else {}))
        if not step.state:
            continue
        if last_state and last_state["subjectState"]["coding"][0]["code"] == step.state:
            if step.reason_text:  # the same state again: its reason text is not dropped
                last_state.setdefault("reason", {}).setdefault("text", step.reason_text)
            continue
        if last_state is not None and start and "startDate" in last_state:
            last_state["endDate"] = start
        entry = {"type": _concept(STATE_TYPE, "Enrollment", "Enrollment status"),
                 "subjectState": _concept(R5_STATE, step.state, step.state_display)}
        if step.reason or step.reason_text:
            entry["reason"] = _reason(step)
        if start:
            entry["startDate"] = start
        entries.append(entry)
        last_state = entry
    return entries


def _concept(system: str, code: str, display: str | None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


def _reason(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if step.reason and step.reason.code:
        out["coding"] = [{"system": REASON, "code": step.reason.code}
                         | ({"display": step.reason.display} if step.reason.display else {})]
    if step.reason_text:
        out["text"] = step.reason_text
    return out


def _period(record: EnrollmentRecord, steps: list[Step], fields: dict[str, str], when: Any,
            warn: list[str]) -> dict[str, str]:
    consent = next((s for s in steps if s.reason and s.reason.code == "informedConsentSigned"
                    and s.date), None)
    start, start_field = ((record.consent_date, fields["consent"]) if record.consent_date else
                          (consent.date, consent.field) if consent else
                          (record.start_date, fields["start"]))
    end, end_field = record.end_date, fields["end"]
    final = next((s for s in reversed(steps) if s.state), None)
    if end is None and final and final.state in END_STATES:
        end, end_field = ((final.date, final.field) if final.date else
                          (record.treatment_end_date, fields["treatment_end"]))
    if start and end and is_after(start, end):
        warn.append(f"{end_field} is before {start_field}: period end not carried")
        end = None
    period = {"start": when(start, start_field), "end": when(end, end_field)}
    return {k: v for k, v in period.items() if v}
