// FHIR REST helpers and page utilities shared by the dashboard pages.
"use strict";

const FHIR_BASE = document.body.dataset.fhirBase;
const PAGE_SIZE = 1000; // the server caps _count at its MAX_COUNT and says so in its links

class FhirError extends Error {
  constructor(url, status, text) {
    super(`${status} from ${url}: ${text}`);
    this.status = status;
  }
}

/** A FHIR search or read URL under the API base: fhirUrl("AdverseEvent", [["study", x]]). */
function fhirUrl(path, params = [], version = "") {
  const query = new URLSearchParams(params).toString();
  return `${FHIR_BASE}${version ? "/" + version : ""}/${path}${query ? "?" + query : ""}`;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/fhir+json" } });
  if (!response.ok) {
    let text = response.statusText;
    try {
      const body = await response.json();
      text = (body.issue || []).map((i) => i.diagnostics || i.code).join("; ") || text;
    } catch (e) { /* not an OperationOutcome */ }
    throw new FhirError(url, response.status, text);
  }
  return response.json();
}

/** Every match of a search, to the last page. Throws when the pages hold fewer or more
 * matches than the Bundle's total: a figure is never counted from part of a search.
 *
 * Where the server pages by offset (its `next` link carries `_offset`), the other pages are
 * fetched PARALLEL at a time from that link with only `_offset` changed; otherwise the `next`
 * links are followed one by one. A resource seen twice (the data changed while paging) fails
 * the check too, rather than being counted twice. */
async function searchAll(url, onPage) {
  const PARALLEL = 4;
  const first = await getJson(url);
  const total = typeof first.total === "number" ? first.total : null;
  const pages = [first];
  const nextLink = (bundle) => ((bundle.link || []).find((l) => l.relation === "next") || {}).url;
  const next = nextLink(first);
  const size = (first.entry || []).filter((e) => !e.search || e.search.mode !== "include").length;
  if (next && total !== null && size && /[?&]_offset=\d+/.test(next)) {
    const offsets = [];
    for (let at = size; at < total; at += size) offsets.push(at);
    const urls = offsets.map((at) => next.replace(/([?&]_offset=)\d+/, `$1${at}`));
    for (let i = 0; i < urls.length; i += PARALLEL) {
      pages.push(...await Promise.all(urls.slice(i, i + PARALLEL).map(getJson)));
      if (onPage) onPage(Math.min(total, size * pages.length), total);
    }
  } else {
    const followed = new Set([url]);
    for (let link = next; link; link = nextLink(pages[pages.length - 1])) {
      if (followed.has(link)) throw new Error(`${url}: the next link ${link} came twice: paging loops`);
      followed.add(link);
      pages.push(await getJson(link));
      if (onPage) onPage(null, total);
      // The first page again, or more entries than the total: the links go round. Stop; the
      // checks below say so.
      const last = pages[pages.length - 1];
      const read = pages.reduce((n, b) => n + (b.entry || []).length, 0);
      if (total !== null && read > total) break;
      if ((last.entry || []).length && (last.entry || []).every((e) =>
        (pages[0].entry || []).some((f) => f.fullUrl === e.fullUrl))) break;
    }
  }
  const matches = [];
  const seen = new Set();
  for (const bundle of pages) {
    for (const entry of bundle.entry || []) {
      if (entry.search && entry.search.mode === "include") continue;
      const key = `${entry.resource.resourceType}/${entry.resource.id}`;
      if (seen.has(key)) throw new Error(`${url}: ${key} came twice while paging (the data changed): reload`);
      seen.add(key);
      matches.push(entry.resource);
    }
  }
  if (total !== null && total !== matches.length) {
    throw new Error(`${url}: read ${matches.length} of ${total} matches in ${pages.length} pages`);
  }
  return matches;
}

/** The total of a search (_summary=count). */
async function searchCount(url) {
  const sep = url.includes("?") ? "&" : "?";
  const bundle = await getJson(`${url}${sep}_summary=count`);
  return bundle.total;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A figure linked to the FHIR search it came from. `exact`: that search's total is the
 * figure (the tests check each such link against the server's _summary=count). */
function num(value, href, exact, what) {
  const title = exact
    ? `${what}: the total of this FHIR search`
    : `${what}: counted in this page from the resources of this FHIR search`;
  return el("a", { class: exact ? "num exact" : "num", href, title,
                   "data-exact": exact ? "1" : "0" }, String(value));
}

/** Tables: each is {columns: [{key, label, numeric}], rows: [{key: value | {value, href,
 * exact, what}}]}, kept by id for its CSV download. */
const TABLES = {};

function renderTable(id, caption, columns, rows, styleCell) {
  TABLES[id] = { columns, rows };
  const holder = document.getElementById(id);
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.numeric ? "n" : "" }, c.label)));
  const body = rows.map((row) => el("tr", {}, columns.map((c, i) => {
    const cell = row[c.key];
    const content = cell && typeof cell === "object" && "href" in cell
      ? (cell.value === "" ? "" : cell.link === false ? String(cell.value)
        : num(cell.value, cell.href, cell.exact, cell.what))
      : cell && typeof cell === "object" && "node" in cell ? cell.node
      : cell === undefined || cell === null ? "" : String(cell);
    const attrs = { class: c.numeric ? "n" : "" };
    if (styleCell) Object.assign(attrs, styleCell(row, c) || {});
    return el(i === 0 ? "th" : "td", i === 0 ? { ...attrs, scope: "row" } : attrs, content);
  })));
  holder.replaceChildren(el("table", { "data-table": id },
    el("caption", { class: "sr-only" }, caption), el("thead", {}, head), el("tbody", {}, body)));
  if (!rows.length) holder.append(el("p", { class: "note" }, "None."));
}

function csvValue(cell) {
  const value = cell && typeof cell === "object" ? cell.value ?? cell.text ?? "" : cell ?? "";
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function tableCsv(id) {
  const { columns, rows } = TABLES[id];
  const lines = [columns.map((c) => csvValue(c.label)).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvValue(row[c.key])).join(","));
  return lines.join("\r\n") + "\r\n";
}

function download(name, blobOrUrl) {
  const url = typeof blobOrUrl === "string" ? blobOrUrl : URL.createObjectURL(blobOrUrl);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  if (typeof blobOrUrl !== "string") setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function slug(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60);
}

/** CSV buttons: <button class="csv" data-table="ID">. */
function wireCsvButtons(prefix) {
  for (const button of document.querySelectorAll("button.csv")) {
    button.addEventListener("click", () => {
      const id = button.dataset.table;
      download(`${prefix()}-${id}.csv`, new Blob([tableCsv(id)], { type: "text/csv" }));
    });
  }
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", !!isError);
  if (isError) status.setAttribute("role", "alert");
}

function codingOf(concept) {
  return (concept && concept.coding && concept.coding[0]) || {};
}

function conceptText(concept) {
  if (!concept) return "";
  const c = codingOf(concept);
  return concept.text || c.display || c.code || "";
}
