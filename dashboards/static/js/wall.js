// The operators' wall: one websocket, seven panels and the open incidents over them (wall/*.js; the flood panel with the next two hours' forecasts), running for days without a reload.
// This module holds the page's state and wires the live channels to the panels; each panel module
// draws its part of the page from that state. Memory stays flat: every list is bounded, DOM nodes
// are created once and reused, charts are redrawn with Plotly.react on the same divs, listeners are
// attached once (delegation).
import { initI18n, bindLangToggle } from "./i18n.js";
import { getJSON } from "./api.js";
import { LiveClient } from "./live.js";
import { channel, kinds } from "./contract.js";
import { $, pageConfig, startClock, showConnection, later, zoneName, bindSession } from "./common.js";
import * as air from "./wall/air.js";
import * as alerts from "./wall/alerts.js";
import * as attention from "./wall/attention.js";
import * as cameras from "./wall/cameras.js";
import * as flood from "./wall/flood.js";
import * as forecast from "./wall/forecast.js";
import * as health from "./wall/health.js";
import * as incidents from "./wall/incidents.js";
import * as kpis from "./wall/kpis.js";
import * as mapPanel from "./wall/map-panel.js";
import * as traffic from "./wall/traffic.js";

const config = pageConfig();
const state = {
  kinds: kinds(),            // the device kinds the server knows (one channel each)
  zones: [],                 // from /api/v1/zones
  zoneNames: new Map(),
  summary: null,
  devices: Object.fromEntries(kinds().map((k) => [k, []])),
  byId: new Map(),
  alerts: [],
  events: [],
  air: null,                 // the air channel: city and zone VN_AQI, worst sensors, every sensor as a point
  forecasts: new Map(),      // zone -> its forecast channel's view
  outlook: new Map(),        // device id -> its outlook (forecast points, predicted crossings)
  incidents: [],             // the incidents channel: open incidents, most severe then newest first
  escalations: [],           // ...and the escalations to supervisors still unanswered
  readOnly: !config.user?.canAct, // viewers see alerts but cannot acknowledge or resolve them
};

// Rendering is coalesced per panel (``later``): a burst of deltas draws each panel once.
const draw = {
  health: () => later("health", () => health.render(state), 300),
  flood: () => later("flood", () => flood.render(state), 250),
  traffic: () => later("traffic", () => traffic.renderChart(state), 250),
  cameras: (ms = 250) => later("cameras", () => cameras.render(state), ms),
  air: () => later("air", () => { air.render(state); mapPanel.setAir(state.air?.points || []); }, 250),
  forecast: () => later("forecast", () => forecast.render(state), 250),
};

function showAlerts() {
  alerts.render(state);
  mapPanel.setAlerts(state.alerts);
  attention.renderTitle(state.alerts);
}

function showCameraIncidents() {
  cameras.markIncidents(state);
  mapPanel.setDevices(state.devices.camera || []);
}

function onSummary(data) {
  state.summary = data;
  kpis.render(state);
  traffic.renderWorst(state);
  mapPanel.setZoneStates(data.zones || []);
  draw.health();
  draw.traffic();
}

function onAlerts(data) {
  if (alerts.update(state, data)) attention.draw();
  showAlerts();
  draw.cameras(300);
}

function onEvents(data, msg) {
  cameras.update(state, data, msg);
  showCameraIncidents();
  draw.cameras(200);
}

function onIncidents(data) {
  incidents.update(state, data);
  incidents.render(state);
  mapPanel.setIncidents(state.incidents);
}

function onAir(data) {
  state.air = data;
  draw.air();
}

function onKind(kind, data) {
  state.devices[kind] = data.devices || [];
  for (const d of state.devices[kind]) state.byId.set(d.device_id, d);
  if (kind === "camera") showCameraIncidents(); else mapPanel.setDevices(state.devices[kind]);
  mapPanel.updateScale(); // new devices may have widened the map
  draw.health();
  if (kind === "flood") draw.flood();
  if (kind === "camera") draw.cameras();
}

function onForecast(zone, data) {
  forecast.update(state, zone, data);
  draw.forecast();
  draw.flood();
  draw.traffic();
}

/** Channel name (as the server spells it) -> what its data updates. */
function handlers() {
  const byChannel = new Map([
    [channel("summary"), onSummary],
    [channel("alerts"), onAlerts],
    [channel("events"), onEvents],
    [channel("air"), onAir],
    [channel("incidents"), onIncidents],
  ]);
  for (const kind of state.kinds) byChannel.set(channel("kind", kind), (data) => onKind(kind, data));
  for (const z of state.zones) byChannel.set(channel("forecast", z.zone_id), (data) => onForecast(z.zone_id, data));
  return byChannel;
}

async function loadZones() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const body = await getJSON("/api/v1/zones");
      state.zones = body.items || [];
      state.zoneNames = new Map(state.zones.map((z) => [z.zone_id, zoneName(z)]));
      for (const z of state.zones) z.name = zoneName(z);
      mapPanel.setZones(state.zones);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, Math.min(10000, 500 * 2 ** attempt)));
    }
  }
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  bindSession($("logout"), config.user);
  mapPanel.init(state, config.mapTileUrl);
  attention.init();
  alerts.bind(state, showAlerts);
  startClock(() => {
    attention.renderTitle(state.alerts);
    incidents.render(state); // how late each escalation is moves on by itself
    // Ages on the alert cards move on even when nothing else does.
    if (Date.now() % 30000 < 1000) later("alerts", showAlerts, 10);
  });
  new ResizeObserver(() => {
    mapPanel.updateScale(true);
    cameras.resized();
    later("resize", () => cameras.render(state), 300);
  }).observe($("panel-map"));
  await loadZones();
  health.render(state);
  health.watchProcesses();
  forecast.watchTide();
  forecast.watchSkill();
  document.body.classList.toggle("read-only", state.readOnly);
  const byChannel = handlers();
  const live = new LiveClient({
    channels: [...byChannel.keys()],
    heartbeatS: config.heartbeatS || 10,
    onData: (name, data, msg) => {
      byChannel.get(name)?.(data, msg);
      document.body.dataset.updated = msg.ts || new Date().toISOString();
    },
    onStatus: showConnection,
  });
  window.iocLive = live; // for tests and the soak benchmark
  live.start();
}

main();
