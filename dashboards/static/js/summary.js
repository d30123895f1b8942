// The leaders' summary: the city at a glance on a tablet, read-only, live over the same websocket.
import { initI18n, t, lang, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { enc, getJSON } from "./api.js";
import { LiveClient } from "./live.js";
import { airBand, airScale, channel, congestionState, incidentWindowS, isIncident, localised, pollutantName } from "./contract.js";
import { expected } from "./outlook.js";
import { paintBand } from "./aqi.js";
import {
  $, pageConfig, setText, setAttr, startClock, showConnection, later, shortZone, trend, syncList, fromHTML,
  eventLabel, zoneName, alertTitle,
  bindSession,
} from "./common.js";

const config = pageConfig();
// forecastChannels: each zone's forecast channel (as the server names it) -> the zone.
const state = { summary: null, alerts: [], events: [], zoneNames: new Map(), forecasts: new Map(), forecastChannels: new Map() };
const STATE_RANK = { critical: 0, danger: 0, warning: 1, ok: 2 };

const ROW = `<li><a class="s-row"><span class="s-mark"><span class="icon" aria-hidden="true"></span><span class="label"></span></span>
  <span class="s-body"><span class="s-name"></span><span class="s-line"></span></span><span class="s-big"></span></a></li>`;

function fillRow(li, { href, state: st, mark, name, line, big, unit, prio }) {
  const a = li.firstElementChild;
  if (href) setAttr(a, "href", href); else a.removeAttribute("href");
  setAttr(a, "data-state", st || "none");
  setText(a.querySelector(".label"), mark);
  const nameNode = a.querySelector(".s-name");
  setText(nameNode, name);
  if (prio) nameNode.appendChild(Object.assign(document.createElement("span"), { className: "prio", textContent: t("summary.pilot") }));
  setText(a.querySelector(".s-line"), line);
  const bigNode = a.querySelector(".s-big");
  bigNode.hidden = big === undefined;
  if (big !== undefined) {
    bigNode.textContent = big;
    if (unit) bigNode.appendChild(Object.assign(document.createElement("small"), { textContent: unit }));
  }
}

function kpi(name, value, tr, level) {
  const box = document.querySelector(`.s-kpi[data-kpi="${name}"]`);
  const v = box.querySelector(".v");
  setText(v, value);
  v.classList.toggle("long", value.length > 4);
  setText(box.querySelector(".arrow"), tr.arrow);
  setText(box.querySelector(".delta"), tr.text);
  setAttr(box.querySelector(".trend"), "data-cls", tr.cls);
  setAttr(box, "data-level", level);
}

function renderKpis() {
  const s = state.summary || {};
  const y = s.yesterday || {};
  const fl = s.flood || {};
  const tr = s.traffic || {};
  const al = s.alerts || {};
  kpi("flood", fmt.num(fl.max_level_cm), trend(fl.max_level_cm, y.max_level_cm, 0, false),
    fl.points_danger > 0 ? "critical" : fl.points_warning > 0 ? "warning" : "ok");
  kpi("points", fmt.num(fl.points_warning), trend(fl.points_warning, y.points_warning, 0, false),
    fl.points_danger > 0 ? "critical" : fl.points_warning > 0 ? "warning" : "ok");
  kpi("speed", fmt.num(tr.mean_speed_kmh), trend(tr.mean_speed_kmh, y.mean_speed_kmh, 0, true), tr.mean_speed_level || "none");
  kpi("flow", fmt.compact(tr.flow_veh_h), trend(tr.flow_veh_h, y.flow_veh_h, 0, true), "none");
  kpi("incidents", fmt.num(s.cameras?.incidents_1h), trend(s.cameras?.incidents_1h, y.incidents_1h, 0, false),
    s.cameras?.incidents_1h > 0 ? "warning" : "ok");
  const critical = { arrow: "", text: t("kpi.critical_n", { n: fmt.num(al.critical) }), cls: al.critical > 0 ? "bad" : "flat" };
  kpi("alerts", fmt.num(al.open), critical, al.critical > 0 ? "critical" : al.open > 0 ? "warning" : "ok");
}

function renderAreas() {
  const zones = [...(state.summary?.zones || [])].sort((a, b) => Number(Boolean(b.priority)) - Number(Boolean(a.priority))
    || (STATE_RANK[a.state] ?? 3) - (STATE_RANK[b.state] ?? 3) || (a.name || "").localeCompare(b.name || "", "vi"));
  syncList($("areas-list"), zones, {
    key: (z) => z.zone_id,
    create: () => fromHTML(ROW),
    fill: (li, z) => fillRow(li, {
      href: `/zones/${enc(z.zone_id)}`,
      state: z.state || "ok",
      mark: t(`zone_state.${z.state || "ok"}`),
      name: shortZone(state.zoneNames.get(z.zone_id) || z.name) || z.zone_id,
      prio: z.priority,
      line: `${t("summary.area_line", {
        flood: fmt.num(z.flood_max_cm), speed: fmt.num(z.speed_kmh), incidents: fmt.num(z.incidents_1h), alerts: fmt.num(z.open_alerts),
      })} · ${nextTwoHours(li, z.zone_id)}`,
    }),
  });
}

/** "Expected in the next 2 h" for a zone, from its forecast channel (the row says which level, for tests too). */
function nextTwoHours(li, zone) {
  const view = state.forecasts.get(zone);
  const found = expected(new Map(view ? [[zone, view]] : []));
  li.dataset.expected = found[0]?.level || "none";
  if (!view) return t("summary.expected_unknown");
  if (!found.length) return t("summary.expected_none");
  const first = found[0];
  return t("summary.expected", { n: fmt.num(found.length), level: t(`forecast.level.${first.level}`), eta: fmt.num(first.eta_min) });
}

function renderFlood() {
  const top = [...(state.summary?.flood?.top || [])].filter((p) => fmt.isNum(p.level_cm)).sort((a, b) => b.level_cm - a.level_cm);
  syncList($("flood-list"), top, {
    key: (p) => p.device_id,
    max: 8,
    create: () => fromHTML(ROW),
    fill: (li, p) => {
      const { level } = p; // the server's, against the point's own lines
      fillRow(li, {
        href: `/devices/${enc(p.device_id)}`, state: level, mark: t(`level.${level || "none"}`), name: p.name || p.device_id,
        line: `${t(`level.${level || "none"}`)} · ${shortZone(state.zoneNames.get(p.zone) || p.zone || "")} · ${t("summary.rain", { v: fmt.num(p.rain_mm_h, 1) })}`,
        big: fmt.num(p.level_cm), unit: t("unit.cm"),
      });
    },
  });
  $("flood-empty").hidden = top.length > 0;
}

function renderTraffic() {
  const worst = [...(state.summary?.traffic?.worst || [])].sort((a, b) => a.speed_ratio - b.speed_ratio);
  syncList($("traffic-list"), worst, {
    key: (w) => w.device_id,
    max: 8,
    create: () => fromHTML(ROW),
    fill: (li, w) => fillRow(li, {
      href: `/devices/${enc(w.device_id)}`,
      state: congestionState(w.congestion),
      mark: fmt.isNum(w.congestion) ? t(`congestion.${w.congestion}`) : fmt.DASH,
      name: w.name || w.device_id,
      line: `${fmt.isNum(w.congestion) ? t(`congestion.${w.congestion}`) : fmt.DASH} · ${shortZone(state.zoneNames.get(w.zone) || w.zone || "")} · ${t("summary.free_flow", { v: fmt.num(w.free_flow_kmh) })}`,
      big: fmt.num(w.speed_kmh), unit: t("unit.kmh"),
    }),
  });
}

/** The city's index with the Decision's advice for both groups, then each zone's index, worst first. */
function renderAir() {
  const air = state.summary?.air || {};
  const city = air.city || {};
  const band = airBand(city.band);
  paintBand($("s-air-city"), city.band);
  setText($("s-air-aqi"), fmt.num(city.aqi));
  setText($("s-air-band"), band ? `${localised(band.label, lang())} · ${pollutantName(city.dominant)}` : t("air.no_data"));
  setText($("s-air-general"), band ? localised(band.advice.general, lang()) : fmt.DASH);
  setText($("s-air-sensitive"), band ? localised(band.advice.sensitive, lang()) : fmt.DASH);
  setText($("s-air-note"), airScale().index || "");
  const zones = [...(air.zones || [])].filter((z) => fmt.isNum(z.aqi)).sort((a, b) => b.aqi - a.aqi);
  syncList($("air-zones"), zones, {
    key: (z) => z.zone_id,
    create: () => fromHTML(ROW),
    fill: (li, z) => {
      const zb = airBand(z.band);
      fillRow(li, {
        href: `/zones/${enc(z.zone_id)}`, state: "none", mark: zb ? localised(zb.label, lang()) : fmt.DASH,
        name: shortZone(state.zoneNames.get(z.zone_id) || z.zone_id),
        line: `${pollutantName(z.dominant)} · ${zb ? localised(zb.advice.general, lang()) : ""}`,
        big: fmt.num(z.aqi),
      });
      const row = li.firstElementChild;
      row.style.borderLeftColor = zb ? zb.colour : "";
      li.querySelector(".icon").style.background = zb ? zb.colour : "";
      li.dataset.band = z.band || "none";
    },
  });
}

function renderIncidents() {
  const alerts = [...state.alerts].sort((a, b) => (a.severity === "critical" ? 0 : 1) - (b.severity === "critical" ? 0 : 1)
    || (a.opened_at < b.opened_at ? 1 : -1)).map((a) => ({
    key: `a${a.id}`, state: a.severity === "critical" ? "critical" : "warning", mark: t(`severity.${a.severity || "warning"}`),
    name: alertTitle(a), href: a.device_id ? `/devices/${enc(a.device_id)}` : null,
    line: `${a.device_name || a.device_id || ""} · ${shortZone(state.zoneNames.get(a.zone) || a.zone || "")} · ${fmt.hm(a.opened_at)} · ${t(`alert_state.${a.state}`)}`,
  }));
  const now = Date.now();
  const windowS = incidentWindowS();
  const events = state.events.filter((e) => isIncident(e) && fmt.ageS(e.time, now) < windowS).map((e) => ({
    key: `e${e.id}`, state: ["high", "critical"].includes(e.severity) ? "critical" : "warning",
    mark: t("summary.event"), name: eventLabel(e.type), href: `/devices/${enc(e.device_id)}`,
    line: `${e.device_name || e.device_id} · ${shortZone(state.zoneNames.get(e.zone) || e.zone || "")} · ${fmt.hm(e.time)}`,
  }));
  const open = state.summary?.open_incidents || { by_zone: [], by_severity: {} };
  const zones = (open.by_zone || []).map((z) => ({
    key: `z${z.zone_id}`, state: z.critical ? "critical" : "warning", mark: t("summary.incidents_open"),
    name: shortZone(state.zoneNames.get(z.zone_id) || z.zone_id || ""), big: fmt.num(z.total),
    line: t("summary.open_by_zone", { critical: fmt.num(z.critical), warning: fmt.num(z.warning) }),
  }));
  const sev = open.by_severity || {};
  const counts = $("incident-counts");
  setAttr(counts, "data-state", sev.critical ? "critical" : sev.warning ? "warning" : "ok");
  setText(counts, `${t("incident.open")}: ${fmt.num(open.total || 0)} · ${t("summary.open_by_zone", { critical: fmt.num(sev.critical || 0), warning: fmt.num(sev.warning || 0) })}`);
  const items = [...zones, ...alerts, ...events];
  syncList($("incident-list"), items, { key: (i) => i.key, max: 30, create: () => fromHTML(ROW), fill: fillRow });
  $("incidents-empty").hidden = items.length > 0;
  setText($("incidents-note"), t("summary.incidents_note", { alerts: fmt.num(alerts.length), events: fmt.num(events.length) }));
}

function onData(name, data, msg) {
  if (name === channel("summary")) {
    state.summary = data;
    for (const z of data.zones || []) if (!state.zoneNames.has(z.zone_id)) state.zoneNames.set(z.zone_id, z.name);
    renderKpis();
    renderAreas();
    renderFlood();
    renderTraffic();
    renderAir();
    later("incidents", renderIncidents, 100);
  } else if (name === channel("alerts")) {
    state.alerts = data.alerts || [];
    later("incidents", renderIncidents, 100);
  } else if (name === channel("events")) {
    state.events = data.events || [];
    later("incidents", renderIncidents, 100);
  } else if (state.forecastChannels.has(name)) {
    state.forecasts.set(state.forecastChannels.get(name), data);
    later("areas", renderAreas, 200);
  }
  setText($("s-updated"), t("summary.updated", { time: fmt.time(msg.ts || new Date()) }));
  document.body.dataset.updated = msg.ts || new Date().toISOString();
}

async function loadZoneNames() {
  try {
    const body = await getJSON("/api/v1/zones");
    for (const z of body?.items || []) state.zoneNames.set(z.zone_id, zoneName(z));
    state.forecastChannels = new Map((body?.items || []).map((z) => [channel("forecast", z.zone_id), z.zone_id]));
  } catch { /* names from the summary stay */ }
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  bindSession($("logout"), config.user);
  startClock();
  await loadZoneNames();
  const live = new LiveClient({
    channels: [channel("summary"), channel("alerts"), channel("events"), ...state.forecastChannels.keys()],
    heartbeatS: config.heartbeatS || 10, onData, onStatus: showConnection,
  });
  window.iocLive = live;
  live.start();
}

main();
