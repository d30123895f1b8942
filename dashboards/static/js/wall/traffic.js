// The traffic panel: each zone's mean speed and congestion band (with the forecast mean speed in 30 minutes
// from the zone's forecast channel), and the five slowest corridors.
import { t } from "../i18n.js";
import * as fmt from "../format.js";
import { enc } from "../api.js";
import { COLORS, baseLayout, plotText, react, rem } from "../charts.js";
import { $, setText, shortZone } from "../common.js";

const WORST_SHOWN = 5;
const AHEAD_MIN = 30;

/** The zone's forecast mean speed ``AHEAD_MIN`` minutes ahead, or null. */
function ahead(state, zone) {
  const p = (state.forecasts?.get(zone)?.speed || []).find((q) => q.h === AHEAD_MIN);
  return fmt.isNum(p?.value) ? p.value : null;
}

/** Each zone's mean speed and congestion band, as the server computes them (``summary.zones``). */
export function renderChart(state) {
  const rows = (state.summary?.zones || []).filter((z) => fmt.isNum(z.speed_kmh) && fmt.isNum(z.congestion))
    .map((z) => ({ zone: z.zone_id, name: shortZone(state.zoneNames.get(z.zone_id) || z.name || z.zone_id), speed: z.speed_kmh, cg: z.congestion,
      next: ahead(state, z.zone_id) }))
    .sort((a, b) => b.speed - a.speed);
  const r = rem();
  const data = [{
    type: "bar", orientation: "h", y: rows.map((q) => plotText(q.name)), x: rows.map((q) => q.speed),
    marker: { color: rows.map((q) => COLORS.congestion[q.cg]) },
    text: rows.map((q) => `${fmt.num(q.speed, 0)}  ${t(`congestion.${q.cg}`)}`), textposition: "outside", cliponaxis: false,
    textfont: { size: Math.round(r * 0.78), color: COLORS.text },
    customdata: rows.map((q) => q.zone), hoverinfo: "skip",
  }, {
    type: "scatter", mode: "markers", y: rows.map((q) => plotText(q.name)), x: rows.map((q) => q.next), name: t("forecast.in_30"),
    marker: { symbol: "line-ns-open", size: r * 1.3, line: { width: r * 0.2, color: COLORS.text } },
    hovertext: rows.map((q) => `${t("forecast.in_30")}: ${fmt.num(q.next, 0)} ${t("unit.kmh")}`), hoverinfo: "text",
  }];
  const layout = baseLayout({
    margin: { l: r * 6.2, r: r * 0.5, t: r * 0.3, b: r * 1.8 },
    bargap: 0.22,
    xaxis: { range: [0, Math.max(60, ...rows.map((q) => q.speed)) * 2.0], gridcolor: COLORS.grid, fixedrange: true,
      title: { text: t("unit.kmh"), standoff: 2 }, zeroline: false },
    yaxis: { automargin: false, fixedrange: true, tickfont: { size: Math.round(r * 0.78) } },
    annotations: [{ xref: "paper", yref: "paper", x: 1, y: 0, yanchor: "bottom", xanchor: "right", showarrow: false,
      text: `┃ ${plotText(t("forecast.in_30"))}`, font: { size: Math.round(r * 0.68), color: COLORS.muted } }],
  });
  const div = $("traffic-chart");
  $("traffic-empty").hidden = rows.length > 0;
  div.style.visibility = rows.length ? "visible" : "hidden";
  if (react(div, data, layout) && !div.dataset.bound) {
    div.dataset.bound = "1";
    div.on("plotly_click", (ev) => { const id = ev.points?.[0]?.customdata; if (id) location.href = `/zones/${enc(id)}`; });
  }
}

/** The five slowest corridors (``summary.traffic.worst``), each a link to its detector. */
export function renderWorst(state) {
  const list = $("worst-list");
  const items = [...(state.summary?.traffic?.worst || [])].sort((a, b) => a.speed_ratio - b.speed_ratio).slice(0, WORST_SHOWN);
  while (list.children.length < WORST_SHOWN) {
    const li = document.createElement("li");
    li.innerHTML = '<a class="w-link"><span class="w-speed"></span><span class="w-body"><span class="w-name"></span>'
      + '<span class="w-meta"><span class="cg-icon" aria-hidden="true"></span><span class="w-cg"></span><span class="w-zone"></span></span></span></a>';
    list.appendChild(li);
  }
  [...list.children].forEach((li, i) => {
    const w = items[i];
    li.hidden = !w;
    if (!w) return;
    li.dataset.cg = w.congestion ?? "x";
    li.querySelector(".w-link").href = `/devices/${enc(w.device_id)}`;
    setText(li.querySelector(".w-speed"), fmt.num(w.speed_kmh, 0));
    setText(li.querySelector(".w-name"), w.name || w.device_id);
    setText(li.querySelector(".w-cg"), fmt.isNum(w.congestion) ? t(`congestion.${w.congestion}`) : fmt.DASH);
    setText(li.querySelector(".w-zone"), `· ${shortZone(state.zoneNames.get(w.zone) || w.zone || "")} · ${fmt.num(w.free_flow_kmh)} ${t("unit.kmh")} ${t("traffic.free_flow")}`);
  });
}
