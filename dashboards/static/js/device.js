// Drill-down on one device: latest values, history per metric with CSV download, live status.
import { initI18n, t, applyI18n, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, enc } from "./api.js";
import { LiveClient } from "./live.js";
import { channel, metrics } from "./contract.js";
import { COLORS, baseLayout, digitsOf, forecastTraces, historyTraces, react, rem } from "./charts.js";
import {
  $, pageConfig, setText, setAttr, startClock, showConnection, kindLabel, eventLabel, syncList, fromHTML, shortZone, zoneName,
  bindSession,
} from "./common.js";
import { bindRanges, readings, csvUrl, metricLabel, unitLabel, statusBadge } from "./drill.js";
import * as airDrill from "./air-drill.js";

const config = pageConfig();
const id = config.deviceId;
let device = null;
let zoneLabel = "";
let range = () => "24h";
const charts = new Map(); // metric -> section
let forecasts = Promise.resolve([]); // the device's newest forecasts (every metric the forecaster serves)

// The kind's metrics (the server's registry, in its order) and any other the device reported; not the
// counting interval, which is the period of vehicle_count rather than a reading of its own.
function metricsOf(d) {
  const known = Object.keys(metrics(d.kind));
  const reported = Object.keys(d.latest || {}).filter((m) => !m.includes("."));
  return [...new Set([...known, ...reported])].filter((m) => m !== "interval_s");
}

/** The canonical unit of ``metric`` (the server's), as shown. */
const unitOf = (metric) => unitLabel(metrics(device.kind)[metric]);

function renderHeader() {
  const d = device;
  setText($("device-name"), d.name || d.device_id);
  document.title = `${d.name || d.device_id} – ${t("title.device")}`;
  setText($("device-id"), d.device_id);
  setText($("device-kind"), kindLabel(d.kind));
  statusBadge($("device-status"), d.status);
  setText($("device-seen"), d.last_seen ? t("device.last_seen", { time: fmt.dateTime(d.last_seen), ago: fmt.ago(d.last_seen, t) }) : "");
  const zl = $("zone-link");
  if (d.zone) {
    zl.hidden = false;
    zl.href = `/zones/${enc(d.zone)}`;
    setText(zl, t("nav.zone", { zone: zoneLabel || d.zone }));
  }
}

function renderCards() {
  syncList($("latest-cards"), metricsOf(device), {
    key: (m) => m,
    create: () => fromHTML('<div class="card"><div class="card-label"></div><div class="card-value"><span class="v"></span><small></small></div><div class="card-sub"></div></div>'),
    fill: (node, m) => {
      const cur = device.latest?.[m];
      setText(node.querySelector(".card-label"), metricLabel(m));
      setText(node.querySelector(".v"), fmt.num(cur?.value ?? null, digitsOf(metrics(device.kind)[m])));
      setText(node.querySelector("small"), unitOf(m));
      setText(node.querySelector(".card-sub"), cur ? `${fmt.time(cur.time)} · ${fmt.ago(cur.time, t)}` : t("level.none"));
      if (m === "water_level_cm") setAttr(node, "data-level", device.level || "none");
    },
  });
}

/** The device's newest forecasts, all metrics (none when the forecaster has none). */
async function loadForecasts() {
  try {
    return (await getJSON(`/api/v1/forecasts?device=${enc(id)}`))?.items || [];
  } catch {
    return [];
  }
}

async function drawChart(metric) {
  let box = charts.get(metric);
  if (!box) {
    box = $("tpl-chart").content.firstElementChild.cloneNode(true);
    applyI18n(box);
    setText(box.querySelector(".chart-title"), `${metricLabel(metric)} (${unitOf(metric)})`);
    $("metric-charts").appendChild(box);
    charts.set(metric, box);
  }
  box.querySelector(".csv").href = csvUrl(id, metric, range());
  const [points, all] = await Promise.all([readings(id, metric, range()), forecasts]);
  const ahead = all.filter((f) => f.metric === metric);
  const r = rem();
  const traces = historyTraces(points, { name: metricLabel(metric), color: COLORS.info, plotTime: fmt.plotTime });
  const start = device.latest?.[metric]?.value ?? null;
  traces.push(...forecastTraces(ahead, { name: t("forecast.label"), plotTime: fmt.plotTime, start }));
  box.dataset.forecast = String(ahead.length);
  const shapes = [];
  if (metric === "water_level_cm") {
    for (const [value, color] of [[device.thresholds.warning_cm, COLORS.warning], [device.thresholds.danger_cm, COLORS.danger]]) {
      shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: value, y1: value, line: { color, width: 2, dash: "dash" } });
    }
  }
  const layout = baseLayout({
    margin: { l: r * 3.2, r: r * 1, t: r * 0.8, b: r * 2.4 },
    xaxis: { type: "date", gridcolor: COLORS.grid, fixedrange: false, tickformat: "%H:%M<br>%d/%m", hoverformat: "%d/%m %H:%M:%S" },
    yaxis: { gridcolor: COLORS.grid, zeroline: false, rangemode: "tozero" },
    shapes,
  });
  react(box.querySelector(".chart-plot"), traces, layout);
  const note = points.length ? t("drill.points", { n: fmt.num(points.length) }) : t("drill.no_data");
  setText(box.querySelector(".chart-note"), ahead.length ? `${note} · ${t("forecast.note", { h: Math.max(...ahead.map((a) => a.horizon_min)) })}` : note);
}

function drawCharts() {
  forecasts = loadForecasts();
  for (const m of metricsOf(device)) drawChart(m);
}

async function loadEvents() {
  if (device.kind !== "camera") return;
  $("events-section").hidden = false;
  let events = [];
  try { events = (await getJSON(`/api/v1/events?device_id=${enc(id)}&limit=20`))?.items || []; } catch { events = []; }
  const withSnapshot = events.find((e) => e.snapshot_url);
  const img = $("snapshot");
  if (withSnapshot) { img.src = `${withSnapshot.snapshot_url}?v=${encodeURIComponent(withSnapshot.time)}`; img.hidden = false; }
  syncList($("event-list"), events, {
    key: (e) => e.id,
    create: () => fromHTML('<li class="row"><span class="kind-icon k-camera" aria-hidden="true"></span><span class="name"></span><span class="meta"></span><span class="meta"></span><span class="value"></span></li>'),
    fill: (li, e) => {
      const spans = li.querySelectorAll("span");
      setText(spans[1], eventLabel(e.type));
      setText(spans[2], fmt.dateTime(e.time));
      setText(spans[3], e.severity || "");
      setText(spans[4], fmt.isNum(e.confidence) ? `${fmt.num(e.confidence * 100)} %` : fmt.DASH);
    },
  });
  if (!events.length) $("event-list").replaceChildren(Object.assign(document.createElement("li"), { className: "empty", textContent: t("device.no_events") }));
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  bindSession($("logout"), config.user);
  startClock();
  try {
    device = await getJSON(`/api/v1/devices/${enc(id)}`);
  } catch {
    $("not-found").hidden = false;
    setText($("device-name"), id);
    return;
  }
  renderHeader();
  renderCards();
  getJSON("/api/v1/zones").then((body) => {
    zoneLabel = shortZone(zoneName((body?.items || []).find((z) => z.zone_id === device.zone)));
    renderHeader();
  }).catch(() => {});
  range = bindRanges(() => drawCharts());
  drawCharts();
  loadEvents();
  if (device.kind === "air") airDrill.showDevice(id).catch(() => {});
  const live = new LiveClient({
    channels: [channel("device", id)],
    heartbeatS: config.heartbeatS || 10,
    onData: (_channel, data) => {
      if (!data.device) return;
      device = data.device;
      renderHeader();
      renderCards();
    },
    onStatus: showConnection,
  });
  window.iocLive = live;
  live.start();
  // The last hour moves: redraw it every minute (the longer ranges are bucketed and move slowly).
  setInterval(() => { if (range() === "1h" || range() === "6h") drawCharts(); }, 60000);
}

main();
