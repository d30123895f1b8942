import { lang } from "./i18n.js";

// Plotly in the dashboards' dark style. Sizes follow the root font size so 4K is the same chart, larger.
export const COLORS = {
  text: "#d6e2ee",
  muted: "#9db0c3",
  grid: "rgba(157,176,195,0.16)",
  ok: "#3ddc84",
  warning: "#ffc247",
  danger: "#ff5d5d",
  info: "#4fb3ff",
  rain: "#63c7ff",
  offline: "#7d8a97",
  congestion: ["#3ddc84", "#ffc247", "#ff8a3d", "#ff4d6a"],
};

/**
 * A name or any other data as Plotly text (labels, hover texts, legends, annotations). Plotly reads tags in
 * text as markup (<a href>, <b>, <br>, <span style>) and decodes entities, so escaping draws it as written.
 */
export function plotText(value) {
  return String(value ?? "").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// The root font size follows the window's size (4K walls): read once per size, since a computed style read
// after DOM writes forces a style pass on every chart redraw.
let remPx = 0;
window.addEventListener("resize", () => { remPx = 0; });

export function rem() {
  if (!remPx) remPx = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  return remPx;
}

/** A base layout: transparent, dark grid, font sized in rem. */
export function baseLayout(extra = {}) {
  const r = rem();
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "DejaVu Sans, Noto Sans, sans-serif", color: COLORS.text, size: Math.round(r * 0.8) },
    margin: { l: r * 3, r: r * 1, t: r * 0.5, b: r * 2.2 },
    showlegend: false,
    separators: lang() === "en" ? ".," : ",.",
    hoverlabel: { font: { size: Math.round(r * 0.85) } },
    xaxis: { gridcolor: COLORS.grid, zerolinecolor: COLORS.grid, linecolor: COLORS.grid, fixedrange: true },
    yaxis: { gridcolor: COLORS.grid, zerolinecolor: COLORS.grid, linecolor: COLORS.grid, fixedrange: true },
    ...extra,
  };
}

export const CONFIG = { displayModeBar: false, responsive: true };

/** Plotly.react when Plotly is there (the bundle is deferred; the first call may precede it). */
export function react(div, data, layout, config = CONFIG) {
  if (!window.Plotly) return false;
  window.Plotly.react(div, data, layout, config);
  return true;
}

/** Decimals shown for a value in ``unit`` (the server's canonical units): tenths of lengths, rates and speeds. */
export function digitsOf(unit) {
  return !unit || ["cm", "mm/h", "km/h"].includes(unit) ? 1 : 0;
}

/** The time ranges offered on drill-down pages. */
export const RANGES = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400 };

/** Query string for readings of ``metric`` over the last ``range`` (a RANGES key). */
export function readingsQuery(metric, range) {
  const to = new Date();
  const from = new Date(to.getTime() - RANGES[range] * 1000);
  return new URLSearchParams({ metric, from: from.toISOString(), to: to.toISOString() }).toString();
}

/** Line traces (avg, plus a min-max band when the points are buckets) from a readings answer. */
export function historyTraces(points, { name = "", color = COLORS.info, plotTime, band = true } = {}) {
  const x = points.map((p) => plotTime(p.t));
  const traces = [];
  const bucketed = points.some((p) => p.count > 1 || p.min !== p.max);
  if (band && bucketed) {
    traces.push({ type: "scatter", mode: "lines", x, y: points.map((p) => p.max), line: { width: 0 }, hoverinfo: "skip", showlegend: false });
    traces.push({ type: "scatter", mode: "lines", x, y: points.map((p) => p.min), line: { width: 0 }, fill: "tonexty",
      fillcolor: `${color}33`, hoverinfo: "skip", showlegend: false });
  }
  traces.push({ type: "scatter", mode: points.length > 1 ? "lines" : "markers", x, y: points.map((p) => p.avg), name: plotText(name),
    line: { color, width: 2.5 }, marker: { color, size: 7 } });
  return traces;
}

/**
 * The forecast after the history: the median as a dashed line from the origin and the 80 % interval as a
 * band, from ``/api/v1/forecasts`` items of one device and metric (``origin``, ``target``, ``value``,
 * ``lower``, ``upper``); ``start`` is the last observed value (the line starts there, at the origin).
 */
export function forecastTraces(items, { name = "", color = COLORS.text, plotTime, start = null, band = true, legend = true } = {}) {
  const sorted = [...items].sort((a, b) => a.horizon_min - b.horizon_min);
  if (!sorted.length) return [];
  const head = typeof start === "number" ? [{ target: sorted[0].origin, value: start, lower: start, upper: start }] : [];
  const pts = [...head, ...sorted];
  const x = pts.map((p) => plotTime(p.target));
  const traces = [];
  if (band && sorted.some((p) => typeof p.lower === "number")) {
    traces.push({ type: "scatter", mode: "lines", x, y: pts.map((p) => p.upper ?? p.value), line: { width: 0 }, hoverinfo: "skip", showlegend: false });
    traces.push({ type: "scatter", mode: "lines", x, y: pts.map((p) => p.lower ?? p.value), line: { width: 0 }, fill: "tonexty",
      fillcolor: "rgba(214,226,238,0.18)", hoverinfo: "skip", showlegend: false, meta: "forecast-band" });
  }
  traces.push({ type: "scatter", mode: "lines+markers", x, y: pts.map((p) => p.value), name: plotText(name), meta: "forecast", showlegend: legend,
    line: { color, width: 2, dash: "dash" }, marker: { color, size: 5 } });
  return traces;
}

export const SERIES = ["#4fb3ff", "#ffc247", "#3ddc84", "#ff8a3d", "#c792ea", "#ff5d5d", "#7fdbca", "#f78c6c",
  "#82aaff", "#c3e88d", "#ffcb6b", "#89ddff"];
