// The flood panel: every point's water level against its own warning and danger lines, with rainfall, and
// the forecast peak of the next two hours with its 80 % interval (wall/forecast.js keeps the outlooks).
import { t } from "../i18n.js";
import * as fmt from "../format.js";
import { enc } from "../api.js";
import { COLORS, baseLayout, plotText, react, rem } from "../charts.js";
import { $, latest, shortZone } from "../common.js";
import { peak } from "./forecast.js";

function rows(state) {
  return (state.devices.flood || []).map((d) => {
    const { warning_cm: warning, danger_cm: danger } = d.thresholds; // the server's, per device
    const level = latest(d, "water_level_cm");
    const offline = d.status !== "online";
    const top = peak(state.outlook?.get(d.device_id));
    return { d, level, warning, danger, rain: latest(d, "rainfall_mm_h"), offline, top, ratio: level === null ? -1 : level / danger };
  }).sort((a, b) => b.ratio - a.ratio);
}

function colour(r) {
  if (r.offline) return COLORS.offline;
  return r.d.level === "danger" ? COLORS.danger : r.d.level === "warning" ? COLORS.warning : COLORS.ok;
}

function hoverText(state, r) {
  return `<b>${plotText(r.d.name)}</b><br>${plotText(shortZone(state.zoneNames.get(r.d.zone) || r.d.zone))}<br>`
    + `${t("flood.level")}: ${fmt.num(r.level, 1)} ${t("unit.cm")}<br>${t("flood.warning_line")}: ${fmt.num(r.warning)} · ${t("flood.danger_line")}: ${fmt.num(r.danger)}`
    + `<br>${t("flood.rain")}: ${fmt.num(r.rain, 1)} ${t("unit.mmh")}<br>${t(`status.${r.d.status || "unknown"}`)}`
    + (r.top ? `<br>${t("forecast.peak")}: ${fmt.num(r.top.value, 1)} ${t("unit.cm")} (+${r.top.h} ${t("unit.min")}`
      + `${fmt.isNum(r.top.lower) ? `, ${t("forecast.interval")} ${fmt.num(r.top.lower, 1)}–${fmt.num(r.top.upper, 1)}` : ""})` : "");
}

/** The forecast peak of each point as a marker with its 80 % interval as an error bar. */
function forecastTrace(points, x) {
  const r = rem();
  const at = (q, f) => (q.top && fmt.isNum(q.top[f]) ? q.top[f] : null);
  return { type: "scatter", mode: "markers", x, y: points.map((q) => at(q, "value")), hoverinfo: "skip", name: t("forecast.peak"),
    marker: { symbol: "diamond-open", size: r * 0.6, color: COLORS.text, line: { width: r * 0.12 } },
    error_y: { type: "data", symmetric: false, color: COLORS.text, thickness: r * 0.08, width: r * 0.25,
      array: points.map((q) => (at(q, "upper") === null ? 0 : at(q, "upper") - at(q, "value"))),
      arrayminus: points.map((q) => (at(q, "lower") === null ? 0 : at(q, "value") - at(q, "lower"))) } };
}

function layout(points) {
  const r = rem();
  const maxY = Math.max(45, ...points.map((q) => Math.max(q.level ?? 0, q.danger, q.top?.upper ?? q.top?.value ?? 0) * 1.12));
  const maxRain = Math.max(10, ...points.map((q) => q.rain ?? 0)) * 1.15;
  return baseLayout({
    margin: { l: r * 2.6, r: r * 2.6, t: r * 2.2, b: r * 3.4 },
    bargap: 0.25,
    xaxis: { type: "category", tickangle: -90, tickfont: { size: Math.round(r * 0.62) }, fixedrange: true, linecolor: COLORS.grid },
    yaxis: { title: { text: t("unit.cm"), standoff: 2 }, range: [0, maxY], gridcolor: COLORS.grid, fixedrange: true, zeroline: false },
    yaxis2: { title: { text: t("unit.mmh"), standoff: 2 }, overlaying: "y", side: "right", range: [0, maxRain], showgrid: false,
      fixedrange: true, tickfont: { color: COLORS.rain }, titlefont: { color: COLORS.rain } },
    annotations: [{ xref: "paper", yref: "paper", x: 1, y: 1.0, yanchor: "bottom", xanchor: "right", showarrow: false,
      text: `<span style="color:${COLORS.warning}">━ ${t("flood.warning_line")}</span>   <span style="color:${COLORS.danger}">━ ${t("flood.danger_line")}</span>`
        + `<br><span style="color:${COLORS.rain}">◆ ${t("flood.rain")}</span>   ◇ ${t("forecast.peak")}`,
      font: { size: Math.round(r * 0.72) } }],
  });
}

/** Redraw the chart from ``state.devices.flood`` (a click on a bar opens its device). */
export function render(state) {
  const div = $("flood-chart");
  const points = rows(state);
  const x = points.map((r) => plotText(r.d.device_id.replace(/^FL-/i, "")));
  const r = rem();
  const data = [
    { type: "bar", x, y: points.map((q) => q.level ?? 0), marker: { color: points.map(colour), line: { width: 0 } },
      customdata: points.map((q) => q.d.device_id), hovertext: points.map((q) => hoverText(state, q)), hoverinfo: "text", name: t("flood.level") },
    { type: "scatter", mode: "markers", x, y: points.map((q) => q.warning), hoverinfo: "skip",
      marker: { symbol: "line-ew", size: r * 1.1, line: { width: r * 0.22, color: COLORS.warning } } },
    { type: "scatter", mode: "markers", x, y: points.map((q) => q.danger), hoverinfo: "skip",
      marker: { symbol: "line-ew", size: r * 1.1, line: { width: r * 0.22, color: COLORS.danger } } },
    { type: "scatter", mode: "markers", x, y: points.map((q) => q.rain), yaxis: "y2", hoverinfo: "skip",
      marker: { symbol: "diamond", size: r * 0.5, color: COLORS.rain } },
    forecastTrace(points, x),
  ];
  if (react(div, data, layout(points)) && !div.dataset.bound) {
    div.dataset.bound = "1";
    div.on("plotly_click", (ev) => { const id = ev.points?.[0]?.customdata; if (id) location.href = `/devices/${enc(id)}`; });
  }
}
