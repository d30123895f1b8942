// Drill-down on one zone: its figures, the history of its flood and traffic sensors, devices and alerts.
import { initI18n, t, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, enc } from "./api.js";
import { LiveClient } from "./live.js";
import { channel } from "./contract.js";
import { COLORS, SERIES, baseLayout, forecastTraces, historyTraces, react, rem } from "./charts.js";
import {
  $, pageConfig, setText, setAttr, startClock, showConnection, later, syncList, fromHTML, shortZone, zoneName, alertTitle,
  bindSession,
} from "./common.js";
import { bindRanges, readings, csvUrl, fillDeviceRow, DEVICE_ROW } from "./drill.js";
import * as airDrill from "./air-drill.js";

const config = pageConfig();
const id = config.zoneId;
let zone = null;
let range = () => "24h";

function card(name, value, sub, level) {
  const box = document.querySelector(`.card[data-card="${name}"]`);
  setText(box.querySelector(".v"), value);
  setText(box.querySelector(".card-sub"), sub);
  setAttr(box, "data-level", level || "none");
}

function render() {
  const z = zone.zone || {};
  setText($("zone-name"), zoneName(z) || id);
  document.title = `${shortZone(zoneName(z)) || id} – ${t("title.zone")}`;
  $("zone-priority").hidden = !z.priority;
  const alerts = [...(zone.alerts || [])].sort((a, b) => (a.severity === "critical" ? 0 : 1) - (b.severity === "critical" ? 0 : 1)
    || (a.opened_at < b.opened_at ? 1 : a.opened_at > b.opened_at ? -1 : 0));
  const critical = alerts.some((a) => a.severity === "critical");
  const st = zone.state || "ok"; // the server's judgement, as on the summary
  setAttr($("zone-state"), "data-state", st);
  setText($("zone-state").querySelector(".text"), t(`zone_state.${st}`));
  const fl = zone.flood || {};
  card("flood", fmt.num(fl.max_level_cm), t("zone.points", { warning: fmt.num(fl.points_warning), danger: fmt.num(fl.points_danger) }),
    fl.points_danger > 0 ? "danger" : fl.points_warning > 0 ? "warning" : "ok");
  card("speed", fmt.num(zone.traffic?.mean_speed_kmh), t("zone.congested", { n: fmt.num(zone.traffic?.congested) }), "ok");
  card("incidents", fmt.num(zone.cameras?.incidents_1h), "", zone.cameras?.incidents_1h > 0 ? "warning" : "ok");
  card("alerts", fmt.num(alerts.length), t("kpi.critical_n", { n: fmt.num(alerts.filter((a) => a.severity === "critical").length) }),
    critical ? "critical" : alerts.length ? "warning" : "ok");
  const devices = [...(zone.devices || [])].sort((a, b) => a.kind.localeCompare(b.kind) || a.device_id.localeCompare(b.device_id));
  syncList($("device-list"), devices, { key: (d) => d.device_id, max: 500, create: () => fromHTML(DEVICE_ROW), fill: fillDeviceRow });
  syncList($("alert-rows"), alerts, {
    key: (a) => a.id,
    create: () => fromHTML('<li class="row"><span class="kind-icon" aria-hidden="true"></span><a class="name"></a><span class="badge status"><span class="icon" aria-hidden="true"></span><span class="text"></span></span><span class="meta"></span><span class="value"></span></li>'),
    fill: (li, a) => {
      li.querySelector(".kind-icon").className = `kind-icon k-${a.kind || "flood"}`;
      const link = li.querySelector(".name");
      setText(link, alertTitle(a));
      setAttr(link, "href", `/devices/${enc(a.device_id)}`);
      setAttr(li.querySelector(".status"), "data-state", a.severity === "critical" ? "critical" : "warning");
      setText(li.querySelector(".status .text"), t(`severity.${a.severity || "warning"}`));
      setText(li.querySelector(".meta"), `${a.device_name || a.device_id} · ${fmt.dateTime(a.opened_at)} · ${t(`alert_state.${a.state}`)}`);
      setText(li.querySelector(".value"), fmt.num(a.value, 1));
    },
  });
  $("alerts-empty").hidden = alerts.length > 0;
}

async function drawHistory(boxId, kind, metric) {
  const box = $(boxId);
  const devices = (zone.devices || []).filter((d) => d.kind === kind);
  box.hidden = devices.length === 0;
  if (!devices.length) return;
  const [series, ahead] = await Promise.all([
    Promise.all(devices.map((d) => readings(d.device_id, metric, range()))),
    getJSON(`/api/v1/forecasts?metric=${enc(metric)}`).then((b) => b?.items || []).catch(() => []),
  ]);
  const traces = devices.flatMap((d, i) => historyTraces(series[i], {
    name: d.name || d.device_id, color: SERIES[i % SERIES.length], plotTime: fmt.plotTime, band: false,
  }));
  // Each device's forecast median, dashed in its colour, from its reading now (the bands stay on the device page).
  let forecast = 0;
  devices.forEach((d, i) => {
    const own = ahead.filter((f) => f.device_id === d.device_id);
    if (own.length) forecast += 1;
    traces.push(...forecastTraces(own, {
      color: SERIES[i % SERIES.length], plotTime: fmt.plotTime, start: d.latest?.[metric]?.value ?? null, band: false, legend: false,
    }));
  });
  box.dataset.forecast = String(forecast);
  const r = rem();
  const layout = baseLayout({
    margin: { l: r * 3.2, r: r * 1, t: r * 0.8, b: r * 2.4 },
    showlegend: true,
    legend: { orientation: "h", y: -0.18, font: { size: Math.round(r * 0.75) } },
    xaxis: { type: "date", gridcolor: COLORS.grid, tickformat: "%H:%M<br>%d/%m", hoverformat: "%d/%m %H:%M" },
    yaxis: { gridcolor: COLORS.grid, zeroline: false, rangemode: "tozero", title: { text: metric === "water_level_cm" ? t("unit.cm") : t("unit.kmh") } },
  });
  react(box.querySelector(".chart-plot"), traces, layout);
  const note = box.querySelector(".chart-note");
  note.replaceChildren(...devices.map((d) => Object.assign(document.createElement("a"), {
    className: "csv", href: csvUrl(d.device_id, metric, range()), textContent: `${t("drill.csv")} ${d.device_id}`, download: "",
  })));
  note.style.display = "flex";
  note.style.flexWrap = "wrap";
  note.style.gap = "0.4rem";
}

function drawCharts() {
  drawHistory("chart-flood", "flood", "water_level_cm");
  drawHistory("chart-traffic", "traffic", "avg_speed_kmh");
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  bindSession($("logout"), config.user);
  startClock();
  try {
    zone = await getJSON(`/api/v1/zones/${enc(id)}`);
  } catch {
    $("not-found").hidden = false;
    return;
  }
  render();
  range = bindRanges(() => drawCharts());
  drawCharts();
  airDrill.showZone(id).catch(() => {});
  const live = new LiveClient({
    channels: [channel("zone", id)],
    heartbeatS: config.heartbeatS || 10,
    onData: (_channel, data) => { zone = data; later("render", render, 300); },
    onStatus: showConnection,
  });
  window.iocLive = live;
  live.start();
}

main();
