// The study page's figures, computed from FHIR resources (no DOM here).
"use strict";

const REGISTERED = ["on-study", "on-study-intervention", "on-study-observation", "follow-up"];
const SCREENING = ["candidate", "eligible", "potential-candidate", "pending-on-study", "screening"];
const NOT_ENROLLED = ["withdrawn", "not-registered"];
const COMPLETED_REASONS = ["intOrObsComplete"];
const MEDDRA_CLASS = "https://fhir-adapter.dev/fhir/StructureDefinition/meddra-classification";
const AE_IG = "http://hl7.org/fhir/uv/ae-research-backport-ig/StructureDefinition/";
const OCCURRENCE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-AdverseEvent.occurrence";
const SEVERITIES = ["mild", "moderate", "severe"];
const NOT_RECORDED = "not recorded";

function ext(resource, url) {
  return (resource.extension || []).filter((e) => e.url === url);
}

function subExt(extension, url) {
  return (extension.extension || []).find((e) => e.url === url);
}

/** The treatment-emergent flag (SUPPAE AETRTEM): true, false, or null (unknown). The one place
 * the page reads it; the extension URL comes from the server (dashboard.TREATMENT_EMERGENT_URL). */
function treatmentEmergent(ae) {
  const url = document.body.dataset.teUrl;
  const found = ext(ae, url)[0];
  if (!found) return null;
  if (typeof found.valueBoolean === "boolean") return found.valueBoolean;
  const code = found.valueCode ?? found.valueString ?? found.valueCoding?.code
    ?? codingOf(found.valueCodeableConcept).code;
  const text = String(code ?? "").trim().toUpperCase();
  return text === "Y" || text === "TRUE" ? true : text === "N" || text === "FALSE" ? false : null;
}

/** [start, end) in ms of a FHIR date or dateTime, by its precision (FHIR search semantics). */
function dateRange(value) {
  if (!value) return null;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(value);
  if (m) {
    const [y, mo, d] = [Number(m[1]), m[2] ? Number(m[2]) - 1 : null, m[3] ? Number(m[3]) : null];
    if (mo === null) return [Date.UTC(y, 0, 1), Date.UTC(y + 1, 0, 1)];
    if (d === null) return [Date.UTC(y, mo, 1), Date.UTC(y, mo + 1, 1)];
    return [Date.UTC(y, mo, d), Date.UTC(y, mo, d + 1)];
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) return null;
  const seconds = /:\d{2}:\d{2}/.test(value) ? 1000 : 60000;
  return [t, t + seconds];
}

function month(value) {
  return value ? value.slice(0, 7) : null;
}

function armNames(study) {
  const names = new Map();
  for (const group of study.comparisonGroup || []) names.set(group.linkId, group.name || group.linkId);
  return names;
}

/** One subject from an R5 ResearchSubject: its state, dates, arm and reason for leaving. */
function subjectRow(rs, arms) {
  const states = (rs.progress || []).filter((p) => p.subjectState);
  const last = states[states.length - 1];
  const state = last ? codingOf(last.subjectState).code : "unknown";
  const firstRegistered = states.find((p) => REGISTERED.includes(codingOf(p.subjectState).code));
  const armId = rs.assignedComparisonGroup || rs.actualComparisonGroup;
  const reason = state === "off-study" && last.reason ? last.reason : null;
  const reasonCode = reason ? codingOf(reason).code : null;
  const label = ((rs.identifier || []).find((i) => i.use === "official") || (rs.identifier || [])[0] || {}).value || rs.id;
  const start = (states[0] && states[0].startDate) || (rs.period && rs.period.start) || null;
  return {
    id: rs.id, label, patient: rs.subject && rs.subject.reference, state,
    arm: armId ? arms.get(armId) || armId : "No arm",
    consent: start, enrolled: !!firstRegistered,
    enrolledOn: firstRegistered ? firstRegistered.startDate || null : null,
    end: (rs.period && rs.period.end) || null,
    screening: SCREENING.includes(state), screenFailure: state === "ineligible",
    notEnrolled: NOT_ENROLLED.includes(state), ongoing: REGISTERED.includes(state),
    offStudy: state === "off-study",
    completed: state === "off-study" && COMPLETED_REASONS.includes(reasonCode),
    reason: state === "off-study" ? (reason ? conceptText({ coding: reason.coding }) || reason.text : "reason not recorded") : null,
    reasonText: reason && reason.text && reason.text !== conceptText({ coding: reason.coding }) ? reason.text : "",
  };
}

function gradeOf(ae) {
  const g = ext(ae, AE_IG + "ae-grade")[0];
  if (!g) return NOT_RECORDED;
  const c = codingOf(g.valueCodeableConcept);
  const m = /Grade\s*(\d)/i.exec(c.display || "");
  return m ? `Grade ${m[1]}` : c.display || c.code || NOT_RECORDED;
}

/** One adverse event from an R4 AdverseEvent, with its subject's arm. */
function aeRow(ae, subjectsByPatient) {
  const classification = ext(ae, MEDDRA_CLASS)[0];
  const socCoding = classification && subExt(classification, "soc");
  const ptCoding = classification && subExt(classification, "pt");
  const criteria = ext(ae, AE_IG + "seriousness-criteria")
    .filter((c) => subExt(c, "criterionPresent")?.valueBoolean === true)
    .map((c) => conceptText(subExt(c, "criterionCode")?.valueCodeableConcept));
  const occurrence = ext(ae, OCCURRENCE)[0];
  const subjectRef = ae.subject && ae.subject.reference;
  const subject = subjectsByPatient.get(subjectRef);
  return {
    id: ae.id, subject: subject ? subject.label : subjectRef || "", subjectId: subject ? subject.id : null,
    arm: subject ? subject.arm : "No arm",
    term: (ptCoding && ptCoding.valueCoding.display) || conceptText(ae.event) || "",
    verbatim: ae.event && ae.event.text || "",
    soc: (socCoding && socCoding.valueCoding.display) || "SOC not coded",
    severity: codingOf(ae.severity).code || NOT_RECORDED,
    grade: gradeOf(ae),
    seriousness: codingOf(ae.seriousness).code || NOT_RECORDED,
    serious: codingOf(ae.seriousness).code === "Serious",
    criteria, outcome: conceptText(ae.outcome),
    onset: ae.date || (occurrence && occurrence.valuePeriod && occurrence.valuePeriod.start) || null,
    end: (occurrence && occurrence.valuePeriod && occurrence.valuePeriod.end) || null,
    te: treatmentEmergent(ae),
  };
}

/** Whether an event passes the filters. Dates follow FHIR `date=ge/le` semantics on the onset
 * (AdverseEvent.date): a partial date matches when its range overlaps; an undated event never
 * matches a date filter. */
function aeMatches(row, filters) {
  if (filters.arm && row.arm !== filters.arm) return false;
  if (filters.seriousness && row.seriousness !== filters.seriousness) return false;
  if (filters.from || filters.to) {
    const range = dateRange(row.onset);
    if (!range) return false;
    if (filters.from && !(range[1] > dateRange(filters.from)[0])) return false;
    if (filters.to && !(range[0] < dateRange(filters.to)[1])) return false;
  }
  return true;
}

/** Monthly counts of consents and enrolments, with running totals. */
function byMonth(subjects) {
  const months = new Map();
  const bump = (key, field) => {
    if (!key) return;
    const row = months.get(key) || { month: key, consented: 0, enrolled: 0 };
    row[field] += 1;
    months.set(key, row);
  };
  for (const s of subjects) {
    bump(month(s.consent), "consented");
    if (s.enrolled) bump(month(s.enrolledOn), "enrolled");
  }
  const rows = [...months.values()].sort((a, b) => a.month.localeCompare(b.month));
  let consented = 0;
  let enrolled = 0;
  for (const row of rows) {
    consented += row.consented;
    enrolled += row.enrolled;
    Object.assign(row, { cumConsented: consented, cumEnrolled: enrolled });
  }
  return rows;
}

function countBy(items, key) {
  const out = new Map();
  for (const item of items) {
    const k = typeof key === "function" ? key(item) : item[key];
    out.set(k, (out.get(k) || 0) + 1);
  }
  return out;
}
