// Vega-Lite charts of the study page (vendored vega-embed; nothing loaded from the network).
"use strict";

const VIEWS = {};
// Chart widths, read once before the tables are filled: reading a width after a large table
// went in forces the browser to lay the whole page out again (measured: ~0.4 s at 10k AEs).
const WIDTHS = {};

function measureCharts() {
  for (const holder of document.querySelectorAll(".chart")) WIDTHS[holder.id] = holder.clientWidth;
}
// Sequential blues, light to dark; the last is dark enough for white text (see heatTextColour).
const HEAT_COLOURS = ["#deebf7", "#9ecae1", "#4292c6", "#08519c"];
const SEVERITY_COLOURS = { mild: "#4292c6", moderate: "#e6550d", severe: "#a50f15", "not recorded": "#636363" };
const CHART_CONFIG = {
  font: "system-ui, sans-serif",
  axis: { labelFontSize: 12, titleFontSize: 12, labelColor: "#222", titleColor: "#222" },
  legend: { labelFontSize: 12, titleFontSize: 12 },
  view: { stroke: null },
};

async function embed(name, spec, empty) {
  const holder = document.getElementById(`chart-${name}`);
  if (VIEWS[name]) VIEWS[name].finalize();
  for (const button of document.querySelectorAll(`button[data-chart='${name}']`)) button.disabled = empty;
  if (empty) { // nothing to draw (Vega would warn of an infinite extent)
    VIEWS[name] = null;
    holder.replaceChildren(el("p", { class: "note" }, "Nothing to chart."));
    return null;
  }
  if (spec.gutter) {
    // Vega-Lite cannot fit a chart of discrete height to its container: size it here.
    const width = WIDTHS[holder.id] ?? holder.clientWidth;
    spec = { ...spec, width: Math.max(240, width - (spec.gutter || 120)), autosize: { type: "pad" } };
    delete spec.gutter;
  }
  const result = await vegaEmbed(holder, { $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    config: CHART_CONFIG, ...spec }, { actions: false, renderer: "canvas" });
  VIEWS[name] = result.view;
  return result.view;
}

function timelineChart(months) {
  const data = [];
  for (const m of months) {
    data.push({ month: m.month, series: "Consented (screened)", subjects: m.cumConsented });
    data.push({ month: m.month, series: "Enrolled", subjects: m.cumEnrolled });
  }
  return embed("timeline", {
    height: 220, gutter: 250, autosize: { type: "pad" },
    data: { values: data },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "month", type: "temporal", timeUnit: "yearmonth", title: "Month" },
      y: { field: "subjects", type: "quantitative", title: "Subjects (cumulative)" },
      color: { field: "series", type: "nominal", title: null,
               scale: { range: ["#08519c", "#e6550d"] } },
      tooltip: [{ field: "month" }, { field: "series" }, { field: "subjects" }],
    },
  }, !data.length);
}

function heatChart(cells, levels, scaleTitle) {
  return embed("heat", {
    height: { step: 24 }, gutter: 500,
    data: { values: cells },
    encoding: {
      x: { field: "level", type: "ordinal", sort: levels, title: scaleTitle, axis: { labelAngle: 0 },
           scale: { domain: levels } },
      y: { field: "soc", type: "nominal", title: null, sort: "ascending",
           axis: { labelLimit: 400 } },
    },
    layer: [
      { mark: "rect",
        encoding: { color: { field: "events", type: "quantitative", title: "Events",
                             scale: { range: HEAT_COLOURS } },
                    tooltip: [{ field: "soc" }, { field: "level" }, { field: "events" }] } },
      { mark: { type: "text", fontSize: 12 },
        encoding: { text: { field: "events" }, color: { condition: { test: "datum.ink === 'white'", value: "white" }, value: "#111" } } },
    ],
  }, !cells.length);
}

function swimmerChart(subjects, events, domainEnd) {
  const lanes = subjects.filter((s) => s.consent).map((s) => ({
    subject: s.label, start: s.consent, end: s.end || domainEnd, arm: s.arm, state: s.state,
  }));
  const marks = events.filter((e) => e.onset && e.subject).map((e) => ({
    subject: e.subject, onset: e.onset.slice(0, 10), term: e.term, severity: e.severity,
    seriousness: e.serious ? "Serious" : "Non-serious", grade: e.grade,
  }));
  const rows = new Set([...lanes.map((l) => l.subject), ...marks.map((m) => m.subject)]).size;
  const step = rows > 200 ? 4 : rows > 60 ? 8 : 16;
  const y = { field: "subject", type: "nominal", title: "Subject", sort: "ascending",
              axis: rows > 60 ? { labels: false, ticks: false } : {} };
  const markLayer = { data: { values: marks }, mark: { type: "point", filled: true, size: step > 8 ? 70 : 20 },
        encoding: {
          y, x: { field: "onset", type: "temporal" },
          color: { field: "severity", type: "nominal", title: "Severity",
                   scale: { domain: Object.keys(SEVERITY_COLOURS), range: Object.values(SEVERITY_COLOURS) } },
          shape: { field: "seriousness", type: "nominal", title: "Seriousness",
                   scale: { domain: ["Non-serious", "Serious"], range: ["circle", "triangle-up"] } },
          tooltip: [{ field: "subject" }, { field: "term" }, { field: "onset" },
                    { field: "severity" }, { field: "grade" }, { field: "seriousness" }],
        } };
  return embed("swimmer", {
    height: { step }, gutter: 260,
    // An empty layer would give Vega an infinite extent to warn about.
    layer: [
      ...(lanes.length ? [{ data: { values: lanes }, mark: { type: "rule", color: "#8a8a8a", strokeWidth: Math.max(1, step / 3) },
        encoding: { y, x: { field: "start", type: "temporal", title: "Date" }, x2: { field: "end" },
                    tooltip: [{ field: "subject" }, { field: "arm" }, { field: "state" },
                              { field: "start" }, { field: "end" }] } }] : []),
      ...(marks.length ? [markLayer] : []),
    ],
  }, !lanes.length && !marks.length);
}

/** PNG/SVG buttons: <button class="png|svg" data-chart="NAME">. */
function wireChartButtons(prefix) {
  for (const button of document.querySelectorAll("button.png, button.svg")) {
    button.addEventListener("click", async () => {
      const view = VIEWS[button.dataset.chart];
      if (!view) return;
      const name = `${prefix()}-${button.dataset.chart}`;
      if (button.classList.contains("png")) {
        download(`${name}.png`, await view.toImageURL("png", 2));
      } else {
        download(`${name}.svg`, new Blob([await view.toSVG()], { type: "image/svg+xml" }));
      }
    });
  }
}
