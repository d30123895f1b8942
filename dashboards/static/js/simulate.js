// What-if for leaders: a scenario (rain, tide, zones, hours) -> POST /api/v1/simulations -> poll until the
// run is done -> the city now beside the city at the slider's time (flood points and detectors on a plain
// lon/lat map), the water at the worst points over time, and the list of hotspots. Levels and congestion
// bands are the server's; this page only draws them.
import { initI18n, t, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, postJSON, deleteJSON, enc } from "./api.js";
import { COLORS, baseLayout, plotText, react, rem } from "./charts.js";
import { $, pageConfig, setText, startClock, bindSession, zoneName, shortZone } from "./common.js";

const config = pageConfig();
const POLL_MS = 500;
const POLL_FOR_MS = 90000;
const HOTSPOTS = 8;
const CHART_LINES = 6;
const LEVEL_COLOR = { ok: COLORS.ok, warning: COLORS.warning, danger: COLORS.danger };
let zones = new Map();
let current = null; // the run shown

function scenario(form) {
  const data = new FormData(form);
  const tide = data.get("tide");
  const chosen = $("all-zones").checked ? null : [...form.querySelectorAll('input[name="zone"]:checked')].map((i) => i.value);
  return {
    rain_mm: Number(data.get("rain_mm")),
    duration_min: Number(data.get("duration_min")),
    rain_start_min: Number(data.get("rain_start_min")),
    tide,
    tide_level_m: tide === "level" ? Number(data.get("tide_level_m")) : null,
    hours: Number(data.get("hours")),
    zones: chosen && chosen.length ? chosen : null,
  };
}

function status(state, extra = "") {
  document.body.dataset.simState = state;
  setText($("sim-status"), state === "idle" ? "" : `${t(`sim.state.${state}`)}${extra ? ` · ${extra}` : ""}`);
  $("cancel").hidden = !(state === "queued" || state === "running");
  $("run").disabled = state === "queued" || state === "running";
}

async function follow(run) {
  const deadline = Date.now() + POLL_FOR_MS;
  current = run;
  while (current?.id === run.id && (run.state === "queued" || run.state === "running") && Date.now() < deadline) {
    status(run.state);
    await new Promise((r) => setTimeout(r, POLL_MS));
    run = await getJSON(`/api/v1/simulations/${enc(run.id)}`);
  }
  if (current?.id !== run.id) return;
  current = run;
  status(run.state, run.state === "done" ? t("sim.took", { s: fmt.num(run.seconds, 1) }) : run.error || "");
  if (run.state === "done") show(run.result);
}

function mapTraces(res, i) {
  const r = rem();
  const floods = res.floods.filter((f) => fmt.isNum(f.lat));
  const traffic = res.traffic.filter((q) => fmt.isNum(q.lat));
  const band = (q) => (i === null ? q.now_congestion : q.congestion[i]);
  const level = (f) => (i === null ? f.now_level : f.levels[i]);
  const depth = (f) => (i === null ? f.now : f.depth_cm[i]);
  return [
    { type: "scatter", mode: "markers", x: traffic.map((q) => q.lon), y: traffic.map((q) => q.lat), hoverinfo: "text",
      hovertext: traffic.map((q) => `${plotText(q.name)}<br>${fmt.num(i === null ? q.now : q.speed_kmh[i], 0)} ${t("unit.kmh")}`),
      marker: { symbol: "square", size: r * 0.55, color: traffic.map((q) => (fmt.isNum(band(q)) ? COLORS.congestion[band(q)] : COLORS.offline)) } },
    { type: "scatter", mode: "markers", x: floods.map((f) => f.lon), y: floods.map((f) => f.lat), hoverinfo: "text",
      hovertext: floods.map((f) => `${plotText(f.name)}<br>${fmt.num(depth(f), 1)} ${t("unit.cm")}`), customdata: floods.map((f) => f.device_id),
      marker: { size: floods.map((f) => r * (0.6 + Math.min(1.2, (depth(f) || 0) / 30))), color: floods.map((f) => LEVEL_COLOR[level(f)] || COLORS.offline),
        line: { width: 1, color: "#07111a" } } },
  ];
}

function mapLayout() {
  const r = rem();
  return baseLayout({
    margin: { l: r * 0.3, r: r * 0.3, t: r * 0.3, b: r * 0.3 },
    xaxis: { visible: false, fixedrange: true },
    yaxis: { visible: false, fixedrange: true, scaleanchor: "x", scaleratio: 1.02 },
  });
}

function counts(node, res, i) {
  const floods = res.floods;
  const level = (f) => (i === null ? f.now_level : f.levels[i]);
  const warning = floods.filter((f) => level(f) === "warning").length;
  const danger = floods.filter((f) => level(f) === "danger").length;
  node.dataset.danger = String(danger);
  setText(node, t("sim.counts", { warning, danger }));
}

function drawAt(res, i) {
  setText($("slider-time"), fmt.hm(res.times[i]));
  setText($("h-then"), t("sim.at", { time: fmt.hm(res.times[i]), tide: fmt.num(res.tide_m[i], 2), rain: fmt.num(res.rain[i], 0) }));
  counts($("counts-now"), res, null);
  counts($("counts-then"), res, i);
  react($("map-now"), mapTraces(res, null), mapLayout());
  react($("map-then"), mapTraces(res, i), mapLayout());
  const r = rem();
  const top = res.floods.slice(0, CHART_LINES);
  const x = res.times.map((v) => fmt.plotTime(v));
  const lines = top.map((f) => ({ type: "scatter", mode: "lines", x, y: f.depth_cm, name: plotText(f.name), line: { width: r * 0.14 } }));
  react($("sim-chart"), lines, baseLayout({
    showlegend: true, legend: { orientation: "h", y: -0.25, font: { size: Math.round(r * 0.65) } },
    margin: { l: r * 2.6, r: r * 0.6, t: r * 0.6, b: r * 3.2 },
    xaxis: { type: "date", tickformat: "%H:%M", gridcolor: COLORS.grid, fixedrange: true },
    yaxis: { title: { text: t("unit.cm") }, gridcolor: COLORS.grid, fixedrange: true, rangemode: "tozero" },
    shapes: [{ type: "line", x0: x[i], x1: x[i], yref: "paper", y0: 0, y1: 1, line: { color: COLORS.text, width: 1.5, dash: "dot" } }],
  }));
  const list = $("hotspots");
  list.replaceChildren(...res.floods.slice(0, HOTSPOTS).map((f) => {
    const li = document.createElement("li");
    li.dataset.device = f.device_id;
    li.dataset.level = f.levels[i] || "none";
    const peakAt = f.depth_cm.indexOf(f.peak_cm);
    li.textContent = t("sim.hotspot", {
      name: f.name, zone: shortZone(zones.get(f.zone) || f.zone || ""), now: fmt.num(f.now, 1), then: fmt.num(f.depth_cm[i], 1),
      peak: fmt.num(f.peak_cm, 1), at: fmt.hm(res.times[peakAt]),
    });
    return li;
  }));
}

function show(res) {
  $("sim-body").hidden = false;
  $("sim-empty").hidden = true;
  setText($("sim-note"), t("sim.note", { start: fmt.hm(res.start), rain: fmt.num(res.rain_mm_h, 0), from: fmt.hm(res.rain_from) }));
  const slider = $("slider");
  slider.max = String(res.times.length - 1);
  const worst = res.summary.reduce((best, s, i) => (s.danger > res.summary[best].danger ? i : best), 0);
  slider.value = String(worst);
  slider.oninput = () => drawAt(res, Number(slider.value));
  drawAt(res, worst);
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  bindSession($("logout"), config.user);
  startClock();
  const body = await getJSON("/api/v1/zones").catch(() => ({ items: [] }));
  zones = new Map((body.items || []).map((z) => [z.zone_id, zoneName(z)]));
  $("zone-boxes").replaceChildren(...(body.items || []).map((z) => {
    const label = document.createElement("label");
    label.className = "choice";
    label.innerHTML = '<input type="checkbox" name="zone"><span></span>';
    label.querySelector("input").value = z.zone_id;
    label.querySelector("span").textContent = shortZone(zoneName(z));
    return label;
  }));
  $("zone-boxes").addEventListener("change", () => { $("all-zones").checked = !$("zone-boxes").querySelector("input:checked"); });
  $("all-zones").addEventListener("change", (ev) => { if (ev.target.checked) for (const i of $("zone-boxes").querySelectorAll("input")) i.checked = false; });
  $("rain-presets").addEventListener("click", (ev) => { const mm = ev.target.dataset?.mm; if (mm) $("scenario").elements.rain_mm.value = mm; });
  $("scenario").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      status("queued");
      await follow(await postJSON("/api/v1/simulations", scenario(ev.target)));
    } catch (err) {
      status("failed", err.message);
    }
  });
  $("cancel").addEventListener("click", async () => {
    if (!current) return;
    try { current = await deleteJSON(`/api/v1/simulations/${enc(current.id)}`); status(current.state); } catch (err) { status("failed", err.message); }
  });
  status("idle");
}

main();
