// /studies/<id>: protocol header, enrollment and adverse events of one study, read through
// the FHIR API (R5 for the study and its subjects' progress, R4 for adverse events).
"use strict";

const STUDY_ID = document.body.dataset.studyId;
const STUDY_REF = `ResearchStudy/${STUDY_ID}`;
const R4Subjects = (params = []) => fhirUrl("ResearchSubject", [["study", STUDY_REF], ...params]);
const R5Subjects = (params = []) => fhirUrl("ResearchSubject", [["study", STUDY_REF], ...params], "R5");
const AdverseEvents = (params = []) => fhirUrl("AdverseEvent", [["study", STUDY_REF], ...params]);
const S = { study: null, subjects: [], events: [], arms: [], filters: {}, renders: 0, title: "study" };

function protocolHeader(study, r4Study) {
  const facts = [];
  const add = (term, ...values) => {
    const shown = values.flat().filter((v) => v !== null && v !== undefined && v !== "");
    if (shown.length) facts.push(el("dt", {}, term), el("dd", {}, ...joinNodes(shown)));
  };
  const title = study.title || STUDY_ID;
  S.title = slug(((study.identifier || [])[0] || {}).value || title);
  document.title = `${title} · fhir-adapter`;
  document.getElementById("study-title").replaceChildren(
    el("a", { href: fhirUrl(`ResearchStudy/${study.id}`) }, title));
  for (const label of study.label || []) add(conceptText(label.type) || "Title", label.value);
  add("Identifiers", (study.identifier || []).map((i) => `${idSystem(i.system)}: ${i.value}`));
  // R4's status is the recruitment status (R5 keeps it in progressStatus; R5 status is the
  // record's publication status).
  add("Status", r4Study.status);
  add("Record status (R5)", study.status);
  add("Phase", conceptText(study.phase));
  add("Period", [study.period?.start, study.period?.end].some(Boolean)
    ? `${study.period?.start || "?"} to ${study.period?.end || "?"}` : "");
  for (const p of study.progressStatus || []) {
    const when = [p.period?.start, p.period?.end].filter(Boolean).join(" to ");
    add(conceptText(p.state) || "Milestone", `${when}${p.actual === false ? " (anticipated)" : p.actual ? " (actual)" : ""}`);
  }
  add("Sponsor", (study.associatedParty || [])
    .filter((a) => /sponsor/.test(codingOf(a.role).code || ""))
    .map((a) => `${a.name || a.party?.display || ""} (${conceptText(a.role)})`));
  add("Sites", (study.site || []).map((s) => s.display || s.reference));
  add("Arms", (study.comparisonGroup || []).map((g) => g.name || g.linkId));
  add("Planned enrolment", study.recruitment?.targetNumber);
  document.getElementById("protocol").replaceChildren(...facts);
}

function joinNodes(values) {
  return values.flatMap((v, i) => (i ? [el("br"), v] : [v]));
}

function idSystem(system) {
  if (!system) return "Identifier";
  if (system.includes("clinicaltrials.gov")) return "ClinicalTrials.gov";
  if (system.endsWith("sponsor-study-id")) return "Sponsor study id";
  return system;
}

function tile(label, value, href, exact) {
  return el("div", { class: "tile" }, el("span", { class: "tile-label" }, label),
    el("span", { class: "tile-value" }, num(value, href, exact, label)));
}

function renderEnrollment() {
  const subs = S.subjects;
  const n = (f) => subs.filter(f).length;
  const source = R5Subjects();
  document.getElementById("enr-summary").replaceChildren(
    tile("Screened", subs.length, R4Subjects(), true),
    tile("In screening", n((s) => s.screening), R4Subjects([["status", SCREENING.join(",")]]), true),
    tile("Screen failures", n((s) => s.screenFailure), R4Subjects([["status", "ineligible"]]), true),
    tile("Left before enrolment", n((s) => s.notEnrolled), R4Subjects([["status", NOT_ENROLLED.join(",")]]), true),
    tile("Enrolled", n((s) => s.enrolled), R5Subjects([["subject_state", REGISTERED.join(",")]]), true),
    tile("Ongoing", n((s) => s.ongoing), R4Subjects([["status", REGISTERED.join(",")]]), true),
    tile("Off study", n((s) => s.offStudy), R4Subjects([["status", "off-study"]]), true),
    tile("Completed", n((s) => s.completed), source, false),
    tile("Discontinued", n((s) => s.offStudy && !s.completed), source, false),
  );
  const reasons = new Map();
  for (const s of subs.filter((x) => x.offStudy)) {
    const row = reasons.get(s.reason) || { reason: s.reason, completed: s.completed ? "yes" : "no", texts: new Set(), count: 0 };
    row.count += 1;
    if (s.reasonText) row.texts.add(s.reasonText);
    reasons.set(s.reason, row);
  }
  renderTable("reasons", "Subjects off study, by reason", [
    { key: "reason", label: "Reason" }, { key: "completed", label: "Completed" },
    { key: "texts", label: "As recorded" }, { key: "count", label: "Subjects", numeric: true },
  ], [...reasons.values()].sort((a, b) => b.count - a.count).map((r) => ({
    reason: r.reason, completed: r.completed, texts: [...r.texts].join("; "),
    count: { value: r.count, href: source, exact: false, what: `Off study: ${r.reason}` },
  })));
  const armRows = S.arms.map((arm) => {
    const a = subs.filter((s) => s.arm === arm);
    const cell = (f, what) => ({ value: a.filter(f).length, href: source, exact: false, what: `${arm}: ${what}` });
    return {
      arm, screened: cell(() => true, "screened"), failures: cell((s) => s.screenFailure, "screen failures"),
      enrolled: cell((s) => s.enrolled, "enrolled"), ongoing: cell((s) => s.ongoing, "ongoing"),
      completed: cell((s) => s.completed, "completed"), discontinued: cell((s) => s.offStudy && !s.completed, "discontinued"),
    };
  }).filter((r) => r.screened.value > 0 || r.arm !== "No arm");
  renderTable("arms", "Subjects per arm", [
    { key: "arm", label: "Arm" }, { key: "screened", label: "Screened", numeric: true },
    { key: "failures", label: "Screen failures", numeric: true }, { key: "enrolled", label: "Enrolled", numeric: true },
    { key: "ongoing", label: "Ongoing", numeric: true }, { key: "completed", label: "Completed", numeric: true },
    { key: "discontinued", label: "Discontinued", numeric: true },
  ], armRows);
  const months = byMonth(subs);
  const cell = (value, what) => ({ value, href: source, exact: false, what });
  renderTable("months", "Subjects consented and enrolled by month", [
    { key: "month", label: "Month" }, { key: "consented", label: "Consented", numeric: true },
    { key: "enrolled", label: "Enrolled", numeric: true },
    { key: "cumConsented", label: "Consented to date", numeric: true },
    { key: "cumEnrolled", label: "Enrolled to date", numeric: true },
  ], months.map((m) => ({
    month: m.month, consented: cell(m.consented, `Consented in ${m.month}`),
    enrolled: cell(m.enrolled, `Enrolled in ${m.month}`),
    cumConsented: cell(m.cumConsented, `Consented by ${m.month}`),
    cumEnrolled: cell(m.cumEnrolled, `Enrolled by ${m.month}`),
  })));
  performance.mark("enrollment-tables");
  return timelineChart(months).then(() => performance.mark("timeline-chart"));
}

function searchParams(extra = []) {
  const f = S.filters;
  return [...(f.seriousness ? [["seriousness", f.seriousness]] : []),
    ...(f.from ? [["date", `ge${f.from}`]] : []), ...(f.to ? [["date", `le${f.to}`]] : []), ...extra];
}

function renderEvents() {
  const f = S.filters;
  const events = S.events.filter((e) => aeMatches(e, f));
  const exact = !f.arm; // arm is no FHIR search parameter: counted here from the search
  const link = (extra) => AdverseEvents(searchParams(extra));
  document.getElementById("filter-note").textContent = f.arm
    ? `Arm "${f.arm}" is not a FHIR search parameter: figures are counted in this page from the linked searches, which span every arm.`
    : "";
  const severityTiles = SEVERITIES.map((level) => tile(`Severity ${level}`,
    events.filter((e) => e.severity === level).length, link([["severity", level]]), exact));
  document.getElementById("ae-summary").replaceChildren(
    tile("Adverse events", events.length, link(), exact),
    tile("Serious", events.filter((e) => e.serious).length, link([["seriousness", "Serious"]]), exact),
    tile("Non-serious", events.filter((e) => e.seriousness === "Non-serious").length, link([["seriousness", "Non-serious"]]), exact),
    tile("Subjects with an event", new Set(events.map((e) => e.subject)).size, link(), false),
    ...severityTiles);
  renderHeat(events, link);
  const te = [[true, "Treatment-emergent"], [false, "Not treatment-emergent"], [null, "Unknown (flag absent)"]];
  renderTable("te", "Adverse events by treatment-emergent flag", [
    { key: "flag", label: "Flag" }, { key: "count", label: "Events", numeric: true }],
  te.map(([value, label]) => ({ flag: label, count: { value: events.filter((e) => e.te === value).length,
    href: link(), exact: false, what: label } })));
  const serious = events.filter((e) => e.serious)
    .sort((a, b) => (a.onset || "").localeCompare(b.onset || "") || a.subject.localeCompare(b.subject));
  renderTable("sae", "Serious adverse events", [
    { key: "subject", label: "Subject" }, { key: "arm", label: "Arm" }, { key: "term", label: "Event" },
    { key: "soc", label: "System organ class" }, { key: "onset", label: "Onset" }, { key: "end", label: "End" },
    { key: "grade", label: "CTCAE grade" }, { key: "severity", label: "Severity" },
    { key: "criteria", label: "Seriousness criteria" }, { key: "outcome", label: "Outcome" },
    { key: "te", label: "Treatment-emergent" },
  ], serious.map((e) => ({
    subject: e.subject, arm: e.arm, onset: e.onset || "", end: e.end || "", grade: e.grade,
    term: { node: el("a", { href: fhirUrl(`AdverseEvent/${e.id}`) }, e.term), value: e.term },
    soc: e.soc, severity: e.severity, criteria: e.criteria.join("; ") || "none recorded",
    outcome: e.outcome, te: e.te === null ? "unknown" : e.te ? "yes" : "no",
  })));
  performance.mark("event-tables");
  const subjects = f.arm ? S.subjects.filter((s) => s.arm === f.arm) : S.subjects;
  const dates = [...S.subjects.flatMap((s) => [s.consent, s.end]), ...S.events.flatMap((e) => [e.onset, e.end])]
    .filter(Boolean).map((d) => d.slice(0, 10)).sort();
  return Promise.all([heatChartFor(events).then(() => performance.mark("heat-chart")),
    swimmerChart(subjects, events, dates[dates.length - 1] || null).then(() => performance.mark("swimmer-chart"))]);
}

function heatLevels() {
  const scale = document.getElementById("f-scale").value;
  const levels = scale === "grade" ? ["Grade 1", "Grade 2", "Grade 3", "Grade 4", "Grade 5"] : [...SEVERITIES];
  return { scale, levels };
}

function renderHeat(events, link) {
  const { scale, levels } = heatLevels();
  const all = [...levels];
  for (const e of events) if (!all.includes(e[scale])) all.push(e[scale]);
  const socs = [...new Set(events.map((e) => e.soc))].sort();
  const counts = countBy(events, (e) => `${e.soc}\u0000${e[scale]}`);
  const max = Math.max(1, ...counts.values());
  const extra = (level) => (scale === "severity" && SEVERITIES.includes(level) ? [["severity", level]] : []);
  const rows = socs.map((soc) => {
    const row = { soc };
    for (const level of all) {
      row[level] = { value: counts.get(`${soc}\u0000${level}`) || 0, href: link(extra(level)),
                     exact: false, what: `${soc}, ${level}` };
    }
    row.total = { value: events.filter((e) => e.soc === soc).length, href: link(), exact: false, what: `${soc}, all` };
    return row;
  });
  renderTable("heat", `Adverse events by system organ class and ${scale}`,
    [{ key: "soc", label: "System organ class" }, ...all.map((l) => ({ key: l, label: l, numeric: true })),
      { key: "total", label: "Total", numeric: true }], rows,
    (row, column) => {
      const cell = row[column.key];
      if (column.key === "soc" || column.key === "total" || !cell.value) return null;
      const step = Math.min(HEAT_COLOURS.length - 1, Math.floor((cell.value / max) * HEAT_COLOURS.length));
      return { style: `background:${HEAT_COLOURS[step]}`, class: `n heat${step === HEAT_COLOURS.length - 1 ? " dark" : ""}` };
    });
  S.heat = { socs, levels: all, counts, max, scale };
}

function heatChartFor() {
  const { socs, levels, counts, max, scale } = S.heat;
  const cells = [];
  for (const soc of socs) {
    for (const level of levels) {
      const events = counts.get(`${soc}\u0000${level}`) || 0;
      if (events) cells.push({ soc, level, events, ink: events >= 0.6 * max ? "white" : "#111" });
    }
  }
  return heatChart(cells, levels, scale === "grade" ? "CTCAE grade" : "Severity");
}

function readFilters() {
  const from = document.getElementById("f-from").value;
  const to = document.getElementById("f-to").value;
  S.filters = { arm: document.getElementById("f-arm").value, from, to,
                seriousness: document.getElementById("f-serious").value };
  const query = new URLSearchParams(Object.entries(S.filters).filter(([, v]) => v));
  const scale = document.getElementById("f-scale").value;
  if (scale !== "severity") query.set("scale", scale);
  history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
}

async function rerender() {
  document.body.dataset.ready = "0";
  readFilters();
  await renderEvents();
  S.renders += 1;
  document.body.dataset.renders = String(S.renders);
  document.body.dataset.ready = "1";
}

function wireFilters() {
  const query = new URLSearchParams(location.search);
  const select = document.getElementById("f-arm");
  for (const arm of S.arms) select.append(el("option", { value: arm }, arm));
  for (const [id, key] of [["f-arm", "arm"], ["f-serious", "seriousness"], ["f-from", "from"], ["f-to", "to"], ["f-scale", "scale"]]) {
    if (query.get(key)) document.getElementById(id).value = query.get(key);
    document.getElementById(id).addEventListener("change", () => rerender());
  }
  document.getElementById("filters").addEventListener("reset", () => setTimeout(rerender, 0));
  document.getElementById("filters").addEventListener("submit", (event) => event.preventDefault());
  let resized = null;
  window.addEventListener("resize", () => { // refit the charts to the new width
    clearTimeout(resized);
    resized = setTimeout(() => {
      measureCharts();
      timelineChart(byMonth(S.subjects));
      rerender();
    }, 250);
  });
}

async function main() {
  measureCharts();
  const subjectsUrl = R5Subjects([["_count", PAGE_SIZE]]);
  const eventsUrl = AdverseEvents([["_count", PAGE_SIZE]]);
  const [study, r4Study, subjects, events] = await Promise.all([
    getJson(fhirUrl(`ResearchStudy/${STUDY_ID}`, [], "R5")), getJson(fhirUrl(`ResearchStudy/${STUDY_ID}`)),
    searchAll(subjectsUrl), searchAll(eventsUrl)]);
  const loaded = performance.now();
  performance.mark("fhir-read");
  S.study = study;
  const names = armNames(study);
  S.subjects = subjects.map((rs) => subjectRow(rs, names));
  const byPatient = new Map(S.subjects.map((s) => [s.patient, s]));
  S.events = events.map((ae) => aeRow(ae, byPatient));
  S.arms = [...names.values(), ...new Set(S.subjects.map((s) => s.arm))].filter((a, i, all) => all.indexOf(a) === i);
  if (!S.arms.includes("No arm") && S.events.some((e) => e.arm === "No arm")) S.arms.push("No arm");
  performance.mark("model");
  protocolHeader(study, r4Study);
  wireFilters();
  readFilters();
  await Promise.all([renderEnrollment(), renderEvents()]);
  performance.mark("drawn");
  setStatus(`Read ${subjects.length} subjects (${subjectsUrl}) and ${events.length} adverse events `
    + `(${eventsUrl}), every page.`);
  document.body.dataset.loadMs = String(Math.round(loaded));
  document.body.dataset.renderMs = String(Math.round(performance.now()));
  document.body.dataset.renders = "1";
  S.renders = 1;
  document.body.dataset.ready = "1";
}

wireCsvButtons(() => S.title);
wireChartButtons(() => S.title);
main().catch((error) => {
  setStatus(`Could not read the study: ${error.message}`, true);
  document.body.dataset.ready = "error";
  console.warn(error);
});
