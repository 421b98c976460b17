// GET /: the stored studies, each with its subject and adverse-event totals.
"use strict";

async function main() {
  const listUrl = fhirUrl("ResearchStudy", [["_count", PAGE_SIZE]]);
  const studies = await searchAll(listUrl, (n, total) =>
    setStatus(`Read ${n} of ${total ?? "?"} studies…`));
  const rows = await Promise.all(studies.map(async (study) => {
    const ref = `ResearchStudy/${study.id}`;
    const subjectsUrl = fhirUrl("ResearchSubject", [["study", ref]]);
    const aesUrl = fhirUrl("AdverseEvent", [["study", ref]]);
    const [subjects, aes] = await Promise.all([searchCount(subjectsUrl), searchCount(aesUrl)]);
    const title = study.title || (study.identifier || [])[0]?.value || study.id;
    return {
      title: { node: el("a", { href: `${document.body.dataset.fhirBase.replace(/\/fhir$/, "")}/studies/${encodeURIComponent(study.id)}` }, title), value: title },
      identifiers: (study.identifier || []).map((i) => i.value).filter(Boolean).join(", "),
      status: study.status || "",
      phase: conceptText(study.phase),
      subjects: { value: subjects, href: subjectsUrl, exact: true, what: "Subjects" },
      aes: { value: aes, href: aesUrl, exact: true, what: "Adverse events" },
      id: study.id,
    };
  }));
  rows.sort((a, b) => String(a.title.value).localeCompare(String(b.title.value)));
  renderTable("studies", "Stored studies", [
    { key: "title", label: "Title" },
    { key: "identifiers", label: "Identifiers" },
    { key: "status", label: "Status" },
    { key: "phase", label: "Phase" },
    { key: "subjects", label: "Subjects", numeric: true },
    { key: "aes", label: "Adverse events", numeric: true },
    { key: "id", label: "ResearchStudy id" },
  ], rows);
  setStatus(`${rows.length} ${rows.length === 1 ? "study" : "studies"} (from `
    + `${listUrl}, every page read).`);
  document.body.dataset.ready = "1";
}

wireCsvButtons(() => "studies");
main().catch((error) => {
  setStatus(`Could not read the studies: ${error.message}`, true);
  document.body.dataset.ready = "error";
});
