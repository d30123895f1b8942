// The next two hours: the flood sensors the forecasts say will pass their warning or danger line (with the
// time and the chance, both computed by the server: forecast.outlook), and the predicted tide with its next
// high water, and how much better than persistence the flood forecasts did in the last backtest. Forecasts
// arrive on the zones' forecast channels (the server pushes each new round); the tide (a function of time)
// and the skill (the newest backtest, computed by the server) are read every few minutes.
import { t } from "../i18n.js";
import * as fmt from "../format.js";
import { enc, getJSON } from "../api.js";
import { COLORS, baseLayout, react, rem } from "../charts.js";
import { $, setText, shortZone } from "../common.js";
import { expected } from "../outlook.js";

const TIDE_EVERY_MS = 10 * 60 * 1000;
const TIDE_HOURS = 24;
const SKILL_EVERY_MS = 30 * 60 * 1000;

/** Store a zone's forecast view; ``state.outlook`` maps device id -> its outlook (points, crossings). */
export function update(state, zone, data) {
  state.forecasts.set(zone, data);
  state.outlook = new Map();
  for (const view of state.forecasts.values()) for (const d of view.devices || []) state.outlook.set(d.device_id, d);
}

/** The peak median of a device's points within the window, with its interval and horizon (or null). */
export function peak(outlook) {
  let best = null;
  for (const p of outlook?.points || []) if (fmt.isNum(p.value) && (!best || p.value > best.value)) best = p;
  return best;
}

/** Redraw the "next 2 hours" list (one reused <li> per row). */
export function render(state) {
  const list = $("outlook-list");
  const rows = expected(state.forecasts);
  while (list.children.length < rows.length) list.appendChild($("tpl-outlook").content.firstElementChild.cloneNode(true));
  [...list.children].forEach((li, i) => {
    const x = rows[i];
    li.hidden = !x;
    if (!x) return;
    li.dataset.device = x.d.device_id;
    li.dataset.level = x.level;
    li.dataset.eta = String(x.eta_min);
    li.querySelector(".ol-link").href = `/devices/${enc(x.d.device_id)}`;
    const at = x.origin ? new Date(new Date(x.origin).getTime() + x.eta_min * 60000) : null;
    setText(li.querySelector(".ol-eta"), t("forecast.eta", { n: x.eta_min }));
    setText(li.querySelector(".ol-name"), x.d.name);
    setText(li.querySelector(".ol-at"), fmt.hm(at));
    setText(li.querySelector(".ol-level"), `${t(`forecast.level.${x.level}`)} ${fmt.num(x.limit)} ${t("unit.cm")}`);
    setText(li.querySelector(".ol-chance"), t("forecast.chance", { p: fmt.num(x.probability * 100) }));
    setText(li.querySelector(".ol-zone"), `· ${shortZone(state.zoneNames.get(x.zone) || x.zone)}`);
  });
  $("outlook-empty").hidden = rows.length > 0 || state.forecasts.size === 0;
}

function drawTide(body) {
  const points = body.points || [];
  const highs = (body.extremes || []).filter((e) => e.type === "high");
  const next = highs.find((e) => new Date(e.time).getTime() > Date.now());
  const box = $("tide-next");
  setText(box, next ? t("forecast.next_high", { time: fmt.hm(next.time), level: fmt.num(next.level_m, 2) }) : "");
  box.dataset.time = next?.time || "";
  const r = rem();
  const x = points.map((p) => fmt.plotTime(p.time));
  const data = [
    { type: "scatter", mode: "lines", x, y: points.map((p) => p.level_m), line: { color: COLORS.info, width: r * 0.14 }, hoverinfo: "skip" },
    { type: "scatter", mode: "markers+text", x: highs.map((e) => fmt.plotTime(e.time)), y: highs.map((e) => e.level_m),
      text: highs.map((e) => fmt.hm(e.time)), textposition: "top center", cliponaxis: false,
      textfont: { size: Math.round(r * 0.62), color: COLORS.text }, marker: { color: COLORS.info, size: r * 0.4 }, hoverinfo: "skip" },
  ];
  const layout = baseLayout({
    margin: { l: r * 2.0, r: r * 0.4, t: r * 0.9, b: r * 1.3 },
    xaxis: { type: "date", gridcolor: COLORS.grid, fixedrange: true, tickformat: "%H:%M", tickfont: { size: Math.round(r * 0.6) }, nticks: 6 },
    yaxis: { gridcolor: COLORS.grid, fixedrange: true, zeroline: false, tickfont: { size: Math.round(r * 0.6) }, ticksuffix: " m" },
  });
  react($("tide-chart"), data, layout);
}

/** Fetch and draw the tide now and every few minutes (a missed fetch keeps the last curve). */
export function watchTide() {
  const load = async () => {
    try { drawTide(await getJSON(`/api/v1/forecasts/tide?hours=${TIDE_HOURS}`)); } catch { /* next time */ }
  };
  load();
  setInterval(load, TIDE_EVERY_MS);
}

function drawSkill(body) {
  const b = body.backtest;
  const rows = (b?.skill || []).filter((r) => r.kind === "flood").sort((x, y) => x.horizon_min - y.horizon_min);
  const node = $("outlook-skill");
  node.dataset.backtest = b ? String(b.id) : "";
  const list = rows.map((r) => `+${r.horizon_min} ${t("unit.min")} ${r.vs_persistence < 0 ? "−" : "+"}${fmt.num(Math.abs(r.vs_persistence) * 100)} %`);
  setText(node, b ? t("forecast.skill", { days: fmt.num(b.days), list: list.join(" · ") }) : t("forecast.skill_none"));
}

/** The newest backtest's flood skill (MAE against persistence) under the list, now and every half hour. */
export function watchSkill() {
  const load = async () => {
    try { drawSkill(await getJSON("/api/v1/forecasts/skill")); } catch { /* next time */ }
  };
  load();
  setInterval(load, SKILL_EVERY_MS);
}
