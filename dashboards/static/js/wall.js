// The operators' wall: one websocket, six panels, running for days without a reload.
// Memory stays flat: every list is bounded, DOM nodes are created once and reused, charts are
// redrawn with Plotly.react on the same divs, listeners are attached once (delegation).
import { initI18n, t, applyI18n, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, postJSON, enc } from "./api.js";
import { LiveClient } from "./live.js";
import { CityMap, distanceKm } from "./map.js";
import { COLORS, baseLayout, plotText, react, rem } from "./charts.js";
import {
  $, pageConfig, setText, setAttr, startClock, showConnection, later, latest, shortZone, trend,
  kindLabel, eventLabel, zoneName, alertTitle, bindSession,
} from "./common.js";

const ALERTS_SHOWN = 60;        // alert cards kept in the DOM
const FLASH_MS = 12000;

const config = pageConfig();
const state = {
  zones: [],                 // from /api/v1/zones
  zoneNames: new Map(),
  summary: null,
  devices: { flood: [], traffic: [], camera: [] },
  byId: new Map(),
  alerts: [],
  events: [],
  eventsMeta: null,          // the events channel's meta (its incident window)
  seenAlerts: new Set(),
  alertsLoaded: false,
  attentionUntil: 0,
  readOnly: !config.user?.canAct, // viewers see alerts but cannot acknowledge or resolve them
  snapshotStamp: new Map(),  // camera id -> cache-busting stamp of its latest snapshot
};

let map;

// ---------------------------------------------------------------- header: KPIs, health, title

function kpi(name, value, sub, level, subCls = "") {
  const box = document.querySelector(`.kpi[data-kpi="${name}"]`);
  if (!box) return;
  const v = box.querySelector(".v");
  setText(v, value);
  v.classList.toggle("long", value.length > 5);
  const subNode = box.querySelector(".kpi-sub");
  setText(subNode, sub);
  setAttr(subNode, "class", `kpi-sub ${subCls}`);
  setAttr(box, "data-level", level || "none");
}

function renderKpis() {
  const s = state.summary || {};
  const y = s.yesterday || {};
  const al = s.alerts || {};
  const fl = s.flood || {};
  const tr = s.traffic || {};
  const dv = s.devices || {};
  kpi("alerts", fmt.num(al.open), t("kpi.critical_n", { n: fmt.num(al.critical) }),
    al.critical > 0 ? "critical" : al.open > 0 ? "warning" : "ok", al.critical > 0 ? "bad" : "");
  const maxName = state.byId.get(fl.max_device_id)?.name;
  const tl = trend(fl.max_level_cm, y.max_level_cm, 0, false);
  kpi("flood", fmt.num(fl.max_level_cm, 0), maxName || `${tl.arrow} ${tl.text}`,
    fl.points_danger > 0 ? "critical" : fl.points_warning > 0 ? "warning" : fmt.isNum(fl.max_level_cm) ? "ok" : "none");
  const tp = trend(fl.points_warning, y.points_warning, 0, false);
  kpi("points", fmt.num(fl.points_warning), t("kpi.danger_n", { n: fmt.num(fl.points_danger) }),
    fl.points_danger > 0 ? "critical" : fl.points_warning > 0 ? "warning" : "ok", fl.points_danger > 0 ? "bad" : tp.cls);
  const ts = trend(tr.mean_speed_kmh, y.mean_speed_kmh, 0, true);
  kpi("speed", fmt.num(tr.mean_speed_kmh, 0), `${ts.arrow} ${ts.text}`.trim(), tr.mean_speed_level || "none", ts.cls);
  const ti = trend(s.cameras?.incidents_1h, y.incidents_1h, 0, false);
  kpi("incidents", fmt.num(s.cameras?.incidents_1h), `${ti.arrow} ${ti.text}`.trim(),
    s.cameras?.incidents_1h > 0 ? "warning" : "ok", ti.cls);
  const down = (dv.offline || 0) + (dv.stale || 0);
  kpi("devices", fmt.isNum(dv.total) ? `${fmt.num(dv.online)}/${fmt.num(dv.total)}` : fmt.DASH,
    t("kpi.not_reporting_n", { n: fmt.num(down) }), down > 0 ? "warning" : "ok", down > 0 ? "bad" : "");

  setText($("flood-warning"), fmt.num(fl.points_warning));
  setText($("flood-danger"), fmt.num(fl.points_danger));
  setText($("flood-rain"), fmt.num(fl.avg_rain_mm_h, 1));
  setText($("traffic-flow"), `${fmt.num(tr.flow_veh_h)} ${t("unit.vehh")}`);
  setText($("traffic-congested"), fmt.num(tr.congested));
  setText($("alerts-critical"), fmt.num(al.critical));
  setText($("alerts-unack"), fmt.num(al.unacknowledged));
}

const STATUSES = ["online", "stale", "offline", "unknown"];

function renderHealth() {
  const body = $("health-body");
  const counts = {};
  const zoneCounts = new Map();
  for (const kind of ["flood", "traffic", "camera"]) {
    counts[kind] = { online: 0, stale: 0, offline: 0, unknown: 0, total: 0 };
    for (const d of state.devices[kind]) {
      const st = STATUSES.includes(d.status) ? d.status : "unknown";
      counts[kind][st] += 1;
      counts[kind].total += 1;
      const z = zoneCounts.get(d.zone) || { online: 0, total: 0 };
      z.total += 1;
      if (st === "online") z.online += 1;
      zoneCounts.set(d.zone, z);
    }
  }
  // Fall back on the summary's counts until the kind channels have arrived.
  const byKind = state.summary?.devices?.by_kind || {};
  for (const kind of Object.keys(counts)) if (!counts[kind].total && byKind[kind]) Object.assign(counts[kind], byKind[kind]);
  if (!body.children.length) {
    for (const kind of Object.keys(counts)) {
      const tr = document.createElement("tr");
      tr.dataset.kind = kind;
      tr.innerHTML = `<th scope="row"><span class="kind-icon k-${kind}" aria-hidden="true"></span><span class="kind-name"></span></th>`
        + STATUSES.map((s) => `<td class="n-${s}"></td>`).join("");
      body.appendChild(tr);
    }
  }
  for (const tr of body.children) {
    const c = counts[tr.dataset.kind];
    setText(tr.querySelector(".kind-name"), kindLabel(tr.dataset.kind));
    for (const s of STATUSES) {
      const td = tr.querySelector(`.n-${s}`);
      setText(td, fmt.num(c[s] || 0));
      td.classList.toggle("nonzero", (c[s] || 0) > 0);
    }
  }
  const chips = $("zone-chips");
  for (const z of state.zones) {
    let chip = chips.querySelector(`[data-zone="${z.zone_id}"]`);
    if (!chip) {
      chip = document.createElement("a");
      chip.className = "zone-chip";
      chip.dataset.zone = z.zone_id;
      chip.href = `/zones/${enc(z.zone_id)}`;
      chip.innerHTML = '<span class="zc-icon" aria-hidden="true"></span><span class="zc-name"></span><span class="zc-n"></span>';
      chips.appendChild(chip);
    }
    const c = zoneCounts.get(z.zone_id) || { online: 0, total: 0 };
    setText(chip.querySelector(".zc-name"), shortZone(z.name));
    setText(chip.querySelector(".zc-n"), `${fmt.num(c.online)}/${fmt.num(c.total)}`);
    setAttr(chip, "data-health", c.total === 0 ? "none" : c.online === c.total ? "ok" : c.online === 0 ? "down" : "partial");
  }
}

function renderTitle() {
  const crit = state.alerts.filter((a) => a.severity === "critical" && a.state === "open").length;
  const base = t("title.wall");
  const flashing = Date.now() < state.attentionUntil && Math.floor(Date.now() / 1000) % 2 === 0;
  const title = crit > 0 ? `${flashing ? "⚠⚠" : "⚠"} (${crit}) ${base}` : base;
  if (document.title !== title) document.title = title;
}

// ---------------------------------------------------------------- flood panel

function floodChart() {
  const div = $("flood-chart");
  const rows = state.devices.flood.map((d) => {
    const { warning_cm: warning, danger_cm: danger } = d.thresholds; // the server's, per device
    const level = latest(d, "water_level_cm");
    const offline = d.status !== "online";
    return { d, level, warning, danger, rain: latest(d, "rainfall_mm_h"), offline, ratio: level === null ? -1 : level / danger };
  }).sort((a, b) => b.ratio - a.ratio);
  const x = rows.map((r) => plotText(r.d.device_id.replace(/^FL-/i, "")));
  const colour = (r) => (r.offline ? COLORS.offline : r.d.level === "danger" ? COLORS.danger : r.d.level === "warning" ? COLORS.warning : COLORS.ok);
  const hover = rows.map((r) => `<b>${plotText(r.d.name)}</b><br>${plotText(shortZone(state.zoneNames.get(r.d.zone) || r.d.zone))}<br>`
    + `${t("flood.level")}: ${fmt.num(r.level, 1)} ${t("unit.cm")}<br>${t("flood.warning_line")}: ${fmt.num(r.warning)} · ${t("flood.danger_line")}: ${fmt.num(r.danger)}`
    + `<br>${t("flood.rain")}: ${fmt.num(r.rain, 1)} ${t("unit.mmh")}<br>${t(`status.${r.d.status || "unknown"}`)}`);
  const r = rem();
  const maxY = Math.max(45, ...rows.map((q) => Math.max(q.level ?? 0, q.danger) * 1.12));
  const maxRain = Math.max(10, ...rows.map((q) => q.rain ?? 0)) * 1.15;
  const data = [
    { type: "bar", x, y: rows.map((q) => q.level ?? 0), marker: { color: rows.map(colour), line: { width: 0 } },
      customdata: rows.map((q) => q.d.device_id), hovertext: hover, hoverinfo: "text", name: t("flood.level") },
    { type: "scatter", mode: "markers", x, y: rows.map((q) => q.warning), hoverinfo: "skip",
      marker: { symbol: "line-ew", size: r * 1.1, line: { width: r * 0.22, color: COLORS.warning } } },
    { type: "scatter", mode: "markers", x, y: rows.map((q) => q.danger), hoverinfo: "skip",
      marker: { symbol: "line-ew", size: r * 1.1, line: { width: r * 0.22, color: COLORS.danger } } },
    { type: "scatter", mode: "markers", x, y: rows.map((q) => q.rain), yaxis: "y2", hoverinfo: "skip",
      marker: { symbol: "diamond", size: r * 0.5, color: COLORS.rain } },
  ];
  const layout = baseLayout({
    margin: { l: r * 2.6, r: r * 2.6, t: r * 1.4, b: r * 3.4 },
    bargap: 0.25,
    xaxis: { type: "category", tickangle: -90, tickfont: { size: Math.round(r * 0.62) }, fixedrange: true, linecolor: COLORS.grid },
    yaxis: { title: { text: t("unit.cm"), standoff: 2 }, range: [0, maxY], gridcolor: COLORS.grid, fixedrange: true, zeroline: false },
    yaxis2: { title: { text: t("unit.mmh"), standoff: 2 }, overlaying: "y", side: "right", range: [0, maxRain], showgrid: false,
      fixedrange: true, tickfont: { color: COLORS.rain }, titlefont: { color: COLORS.rain } },
    annotations: [{ xref: "paper", yref: "paper", x: 1, y: 1.0, yanchor: "bottom", xanchor: "right", showarrow: false,
      text: `<span style="color:${COLORS.warning}">━ ${t("flood.warning_line")}</span>   <span style="color:${COLORS.danger}">━ ${t("flood.danger_line")}</span>   <span style="color:${COLORS.rain}">◆ ${t("flood.rain")}</span>`,
      font: { size: Math.round(r * 0.72) } }],
  });
  if (react(div, data, layout) && !div.dataset.bound) {
    div.dataset.bound = "1";
    div.on("plotly_click", (ev) => { const id = ev.points?.[0]?.customdata; if (id) location.href = `/devices/${enc(id)}`; });
  }
}

// ---------------------------------------------------------------- traffic panel

function trafficChart() {
  // Each zone's mean speed and congestion band, as the server computes them (summary.zones).
  const rows = (state.summary?.zones || []).filter((z) => fmt.isNum(z.speed_kmh) && fmt.isNum(z.congestion))
    .map((z) => ({ zone: z.zone_id, name: shortZone(state.zoneNames.get(z.zone_id) || z.name || z.zone_id), speed: z.speed_kmh, cg: z.congestion }))
    .sort((a, b) => b.speed - a.speed);
  const r = rem();
  const data = [{
    type: "bar", orientation: "h", y: rows.map((q) => plotText(q.name)), x: rows.map((q) => q.speed),
    marker: { color: rows.map((q) => COLORS.congestion[q.cg]) },
    text: rows.map((q) => `${fmt.num(q.speed, 0)}  ${t(`congestion.${q.cg}`)}`), textposition: "outside", cliponaxis: false,
    textfont: { size: Math.round(r * 0.78), color: COLORS.text },
    customdata: rows.map((q) => q.zone), hoverinfo: "skip",
  }];
  const layout = baseLayout({
    margin: { l: r * 6.2, r: r * 0.5, t: r * 0.3, b: r * 1.8 },
    bargap: 0.22,
    xaxis: { range: [0, Math.max(60, ...rows.map((q) => q.speed)) * 2.0], gridcolor: COLORS.grid, fixedrange: true,
      title: { text: t("unit.kmh"), standoff: 2 }, zeroline: false },
    yaxis: { automargin: false, fixedrange: true, tickfont: { size: Math.round(r * 0.78) } },
  });
  const div = $("traffic-chart");
  $("traffic-empty").hidden = rows.length > 0;
  div.style.visibility = rows.length ? "visible" : "hidden";
  if (react(div, data, layout) && !div.dataset.bound) {
    div.dataset.bound = "1";
    div.on("plotly_click", (ev) => { const id = ev.points?.[0]?.customdata; if (id) location.href = `/zones/${enc(id)}`; });
  }
}

function renderWorst() {
  const list = $("worst-list");
  const worst = [...(state.summary?.traffic?.worst || [])].sort((a, b) => a.speed_ratio - b.speed_ratio).slice(0, 5);
  while (list.children.length < 5) {
    const li = document.createElement("li");
    li.innerHTML = '<a class="w-link"><span class="w-speed"></span><span class="w-body"><span class="w-name"></span>'
      + '<span class="w-meta"><span class="cg-icon" aria-hidden="true"></span><span class="w-cg"></span><span class="w-zone"></span></span></span></a>';
    list.appendChild(li);
  }
  [...list.children].forEach((li, i) => {
    const w = worst[i];
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

// ---------------------------------------------------------------- alerts

const SEVERITY_RANK = { critical: 0, warning: 1 };

function sortedAlerts() {
  return [...state.alerts].sort((a, b) => (a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1)
    || (SEVERITY_RANK[a.severity] ?? 2) - (SEVERITY_RANK[b.severity] ?? 2)
    || (a.opened_at < b.opened_at ? 1 : a.opened_at > b.opened_at ? -1 : 0)).slice(0, ALERTS_SHOWN);
}

const alertNodes = new Map();
const alertTpl = () => $("tpl-alert").content.firstElementChild;

function renderAlerts() {
  const list = $("alert-list");
  const shown = sortedAlerts();
  const keep = new Set(shown.map((a) => String(a.id)));
  for (const [id, node] of alertNodes) if (!keep.has(id)) { node.remove(); alertNodes.delete(id); }
  shown.forEach((a, i) => {
    const id = String(a.id);
    let li = alertNodes.get(id);
    if (!li) {
      li = alertTpl().cloneNode(true);
      applyI18n(li);
      li.dataset.id = id;
      alertNodes.set(id, li);
    }
    fillAlert(li, a);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  $("alerts-empty").hidden = shown.length > 0;
  map?.setAlerts(state.alerts);
  renderTitle();
}

function fillAlert(li, a) {
  setAttr(li, "data-severity", a.severity || "warning");
  setAttr(li, "data-device", a.device_id || "");
  setAttr(li, "data-rule", a.rule || "");
  setAttr(li, "data-state", a.state || "open");
  setText(li.querySelector(".sev-text"), t(`severity.${a.severity || "warning"}`));
  const title = li.querySelector(".alert-title");
  setText(title, alertTitle(a) || fmt.DASH);
  if (a.device_id) setAttr(title, "href", `/devices/${enc(a.device_id)}`);
  setText(li.querySelector(".alert-zone"), shortZone(state.zoneNames.get(a.zone) || a.zone || ""));
  const unit = a.kind === "flood" ? t("unit.cm") : a.kind === "traffic" ? t("unit.kmh") : "";
  setText(li.querySelector(".alert-value"), unit && fmt.isNum(a.value) ? `${fmt.num(a.value, 1)} ${unit}` : "");
  setText(li.querySelector(".alert-time"), `${fmt.hm(a.opened_at)} · ${fmt.ago(a.opened_at, t)}`);
  const st = a.state === "acknowledged"
    ? t("alerts.acknowledged_by", { who: a.acknowledged_by || fmt.DASH, time: fmt.hm(a.acknowledged_at) })
    : t("alerts.state_open");
  setText(li.querySelector(".alert-state"), st);
  li.querySelector(".btn-ack").hidden = state.readOnly || a.state !== "open";
  li.querySelector(".btn-resolve").hidden = state.readOnly;
}

async function alertAction(li, action, note) {
  const id = li.dataset.id;
  li.classList.add("busy");
  li.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    const updated = await postJSON(`/api/v1/alerts/${enc(id)}/${action}`, note ? { note } : {});
    const idx = state.alerts.findIndex((a) => String(a.id) === id);
    if (updated && idx >= 0) {
      if (updated.state === "resolved") state.alerts.splice(idx, 1);
      else Object.assign(state.alerts[idx], updated);
    }
    li.classList.remove("failed");
  } catch (err) {
    li.classList.add("failed");
    setText(li.querySelector(".alert-state"), t("alerts.action_failed", { reason: err.message }));
  } finally {
    li.classList.remove("busy");
    li.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    renderAlerts();
  }
}

function bindAlertActions() {
  const list = $("alert-list");
  list.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li.alert");
    const form = li.querySelector(".alert-resolve");
    switch (button.dataset.action) {
      case "ack": alertAction(li, "acknowledge"); break;
      case "resolve": form.hidden = false; li.classList.add("resolving"); form.querySelector("input").focus(); break;
      case "resolve-cancel": form.hidden = true; li.classList.remove("resolving"); break;
      default: break;
    }
  });
  list.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const li = ev.target.closest("li.alert");
    const note = ev.target.querySelector("input").value.trim();
    ev.target.hidden = true;
    li.classList.remove("resolving");
    alertAction(li, "resolve", note);
  });
}

function onAlerts(data, msg) {
  state.alerts = data.alerts || [];
  let fresh = false;
  const current = new Set();
  for (const a of state.alerts) {
    const id = String(a.id);
    current.add(id);
    if (!state.seenAlerts.has(id) && state.alertsLoaded && a.severity === "critical" && a.state === "open") fresh = true;
    state.seenAlerts.add(id);
  }
  for (const id of state.seenAlerts) if (!current.has(id)) state.seenAlerts.delete(id);
  state.alertsLoaded = true;
  if (fresh) drawAttention();
  renderAlerts();
  later("cameras", renderCameras, 300);
}

function drawAttention() {
  const panel = $("panel-alerts");
  state.attentionUntil = Date.now() + FLASH_MS * 2.5;
  panel.classList.remove("flash");
  void panel.offsetWidth; // restart the animation
  panel.classList.add("flash");
  clearTimeout(drawAttention.timer);
  drawAttention.timer = setTimeout(() => panel.classList.remove("flash"), FLASH_MS);
  if (sound.on) sound.beep();
}

const sound = {
  on: false,
  ctx: null,
  init() {
    try { this.on = localStorage.getItem("ioc.sound") === "on"; } catch { this.on = false; }
    const button = $("sound-toggle");
    const show = () => { button.setAttribute("aria-pressed", String(this.on)); button.dataset.on = String(this.on); };
    show();
    button.addEventListener("click", () => {
      this.on = !this.on;
      try { localStorage.setItem("ioc.sound", this.on ? "on" : "off"); } catch { /* ignore */ }
      if (this.on) this.beep();
      show();
    });
  },
  beep() {
    try {
      this.ctx = this.ctx || new AudioContext();
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, this.ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, this.ctx.currentTime + 0.6);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start();
      osc.stop(this.ctx.currentTime + 0.6);
    } catch { /* no audio device */ }
  },
};

// ---------------------------------------------------------------- cameras

function recentEvent(cameraId) {
  const now = Date.now();
  const windowS = state.eventsMeta?.thresholds?.cameras?.incident_window_s ?? 0; // the server's
  for (const e of state.events) {
    if (e.device_id !== cameraId) continue;
    if (fmt.ageS(e.time, now) > windowS) return null;
    return e; // events are newest first
  }
  return null;
}

function markIncidents() {
  for (const cam of state.devices.camera) {
    const e = recentEvent(cam.device_id);
    cam.incident = Boolean(e && e.severity !== "info");
  }
  map?.setDevices(state.devices.camera);
}

function cameraCount() {
  const grid = $("camera-grid");
  const per = getComputedStyle(grid).getPropertyValue("--cams").trim();
  return Number(per) || 6;
}

function renderCameras() {
  const grid = $("camera-grid");
  const n = cameraCount();
  const alertPlaces = state.alerts.map((a) => state.byId.get(a.device_id)).filter((d) => d && fmt.isNum(d.lat));
  const ranked = state.devices.camera.map((c) => {
    const dist = alertPlaces.length && fmt.isNum(c.lat) ? Math.min(...alertPlaces.map((p) => distanceKm(c, p))) : Infinity;
    const ev = recentEvent(c.device_id);
    return { c, dist, ev };
  }).sort((a, b) => a.dist - b.dist || (b.ev?.time || "").localeCompare(a.ev?.time || "") || a.c.device_id.localeCompare(b.c.device_id))
    .slice(0, n);
  while (grid.children.length < n) {
    const tile = $("tpl-camera").content.firstElementChild.cloneNode(true);
    applyI18n(tile);
    const img = tile.querySelector(".cam-img");
    // One load/error pair per tile, for its whole life.
    img.addEventListener("load", () => { img.hidden = false; tile.querySelector(".cam-placeholder").hidden = true; });
    img.addEventListener("error", () => { img.hidden = true; tile.querySelector(".cam-placeholder").hidden = false; });
    grid.appendChild(tile);
  }
  while (grid.children.length > n) grid.lastElementChild.remove();
  setText($("cameras-note"), alertPlaces.length ? t("cameras.nearest_alert") : t("cameras.latest"));
  [...grid.children].forEach((tile, i) => {
    const item = ranked[i];
    tile.hidden = !item;
    if (!item) return;
    const { c, dist, ev } = item;
    setAttr(tile, "href", `/devices/${enc(c.device_id)}`);
    setAttr(tile, "data-device", c.device_id);
    setAttr(tile, "data-status", c.status || "unknown");
    setAttr(tile, "data-incident", ev && ev.severity !== "info" ? "yes" : "no");
    setText(tile.querySelector(".cam-name"), c.name || c.device_id);
    const near = !Number.isFinite(dist) ? "" : dist < 0.05 ? ` · ${t("cameras.at_alert")}`
      : ` · ${t("cameras.km_from_alert", { km: fmt.num(dist, 1) })}`;
    setText(tile.querySelector(".cam-status"), `${t(`status.${c.status || "unknown"}`)}${near}`);
    const overlay = tile.querySelector(".cam-overlay");
    overlay.hidden = !ev;
    if (ev) {
      setText(overlay.querySelector(".cam-event"), eventLabel(ev.type));
      setText(overlay.querySelector(".cam-event-time"), fmt.hm(ev.time));
      setAttr(overlay, "data-severity", ev.severity || "info");
    }
    const stamp = state.snapshotStamp.get(c.device_id) || c.snapshot_at;
    if (!stamp) later("probe", () => probeSnapshots(ranked.map((r) => r.c.device_id)), 3000);
    const img = tile.querySelector(".cam-img");
    if (stamp) {
      const src = `/api/v1/devices/${enc(c.device_id)}/snapshot?v=${encodeURIComponent(stamp)}`;
      if (img.getAttribute("src") !== src) img.setAttribute("src", src);
    } else if (img.hasAttribute("src")) {
      img.removeAttribute("src");
      img.hidden = true;
      tile.querySelector(".cam-placeholder").hidden = false;
    }
  });
}

// An event can be stored a moment before its camera's snapshot, so it may say snapshot_url: null although
// a picture follows. For the cameras on screen, ask the events API again (it answers with the snapshot
// state of now), at most once per camera per PROBE_MS: never a request that could 404.
const PROBE_MS = 20000;
const probedAt = new Map();

function probeSnapshots(cameraIds) {
  const now = Date.now();
  for (const id of cameraIds) {
    if (state.snapshotStamp.has(id) || now - (probedAt.get(id) || 0) < PROBE_MS) continue;
    probedAt.set(id, now);
    getJSON(`/api/v1/events?device_id=${enc(id)}&limit=1`).then((body) => {
      const e = body?.items?.[0];
      if (e?.snapshot_url) {
        state.snapshotStamp.set(id, e.time);
        later("cameras", renderCameras, 100);
      }
    }).catch(() => {});
  }
  for (const id of probedAt.keys()) if (!state.byId.has(id)) probedAt.delete(id);
}

function onEvents(data, msg) {
  state.events = data.events || [];
  state.eventsMeta = data.meta;
  const items = msg.type === "snapshot" ? [...state.events].reverse() : msg.data.events || [];
  for (const e of items) {
    if (e.snapshot_url) {
      state.snapshotStamp.set(e.device_id, e.time);
    } else if (msg.type === "delta" && state.snapshotStamp.has(e.device_id)) {
      // A camera that has pictures: its new one is stored just after the event; reload it a little later.
      setTimeout(() => { state.snapshotStamp.set(e.device_id, e.time); later("cameras", renderCameras, 100); }, 3000);
    }
  }
  // Bounded: only cameras we know.
  for (const id of state.snapshotStamp.keys()) if (!state.byId.has(id)) state.snapshotStamp.delete(id);
  markIncidents();
  later("cameras", renderCameras, 200);
}

// ---------------------------------------------------------------- map details card

function mapCard(d, ev, pinned) {
  const card = $("map-card");
  if (!d) {
    if (!pinned && card.dataset.pinned === "1") return;
    card.hidden = true;
    card.dataset.pinned = "0";
    return;
  }
  if (!pinned && card.dataset.pinned === "1") return;
  card.dataset.pinned = pinned ? "1" : "0";
  setText($("map-card-title"), d.name || d.device_id);
  const rows = [
    [t("common.device"), d.device_id],
    [t("common.kind"), kindLabel(d.kind)],
    [t("common.zone"), state.zoneNames.get(d.zone) || d.zone || fmt.DASH],
    [t("common.status"), t(`status.${d.status || "unknown"}`)],
    [t("common.last_seen"), d.last_seen ? `${fmt.time(d.last_seen)} (${fmt.ago(d.last_seen, t)})` : fmt.DASH],
  ];
  if (d.kind === "flood") {
    rows.push([t("flood.level"), `${fmt.num(latest(d, "water_level_cm"), 1)} ${t("unit.cm")} · ${t(`level.${d.level || "none"}`)}`]);
    rows.push([t("flood.rain"), `${fmt.num(latest(d, "rainfall_mm_h"), 1)} ${t("unit.mmh")}`]);
  } else if (d.kind === "traffic") {
    rows.push([t("traffic.speed"), `${fmt.num(latest(d, "avg_speed_kmh"), 0)} ${t("unit.kmh")} · ${fmt.isNum(d.congestion) ? t(`congestion.${d.congestion}`) : fmt.DASH}`]);
    rows.push([t("traffic.occupancy"), `${fmt.num(latest(d, "occupancy_pct"), 0)} %`]);
  } else if (d.kind === "camera") {
    const e = recentEvent(d.device_id);
    rows.push([t("cameras.last_event"), e ? `${eventLabel(e.type)} · ${fmt.hm(e.time)}` : fmt.DASH]);
  }
  const body = $("map-card-body");
  body.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  $("map-card-link").href = `/devices/${enc(d.device_id)}`;
  $("map-card-link").hidden = !pinned;
  const pos = map.screenPos(d.device_id);
  const box = card.parentElement.getBoundingClientRect();
  card.hidden = false;
  if (pos) {
    const w = card.offsetWidth;
    const h = card.offsetHeight;
    const x = pos.x + 16 + w > box.width ? pos.x - 16 - w : pos.x + 16;
    const y = Math.min(Math.max(4, pos.y - h / 2), box.height - h - 4);
    card.style.left = `${Math.max(4, x)}px`;
    card.style.top = `${y}px`;
  }
}

function updateScale() {
  const svg = $("city-map");
  const vb = svg.viewBox.baseVal;
  if (!vb || !vb.width) return;
  const box = svg.getBoundingClientRect();
  const pxPerUnit = Math.min(box.width / vb.width, box.height / vb.height);
  const km = 2;
  const px = km * (1000 / 110.57) * pxPerUnit;
  $("scale-bar").style.width = `${px.toFixed(0)}px`;
  setText($("scale-text"), `${fmt.num(km)} km`);
}

// Processes `ioc up` reports as failing (GET /api/v1/health): one line under the device health, hidden when none.
async function renderProcesses() {
  const processes = (await getJSON("/api/v1/health").catch(() => null))?.processes || {};
  const failing = Object.entries(processes).filter(([, p]) => p.state === "failing");
  $("health-processes").hidden = !failing.length;
  setText($("health-processes"), failing.map(([name, p]) => t("health.failing", { name, restarts: p.restarts, code: p.last_exit_code })).join(" · "));
}

// ---------------------------------------------------------------- wiring

function onKind(kind, data) {
  state.devices[kind] = data.devices || [];
  for (const d of state.devices[kind]) state.byId.set(d.device_id, d);
  if (kind === "camera") markIncidents(); else map.setDevices(state.devices[kind]);
  updateScale();
  later("health", renderHealth, 300);
  if (kind === "flood") later("flood", floodChart, 250);
  if (kind === "camera") later("cameras", renderCameras, 250);
}

function onData(channel, data, msg) {
  if (channel === "summary") {
    state.summary = data;
    renderKpis();
    renderWorst();
    map.setZoneStates(data.zones || []);
    later("health", renderHealth, 300);
    later("traffic", trafficChart, 250);
  } else if (channel === "alerts") {
    onAlerts(data, msg);
  } else if (channel === "events") {
    onEvents(data, msg);
  } else if (channel.startsWith("kind:")) {
    onKind(channel.slice(5), data);
  }
  document.body.dataset.updated = msg.ts || new Date().toISOString();
}

async function loadZones() {
  for (let attempt = 0; ; attempt += 1) {
    try {
      const body = await getJSON("/api/v1/zones");
      state.zones = body.items || [];
      state.zoneNames = new Map(state.zones.map((z) => [z.zone_id, zoneName(z)]));
      for (const z of state.zones) z.name = zoneName(z);
      map.setZones(state.zones);
      updateScale();
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
  map = new CityMap($("city-map"), {
    tileUrl: config.mapTileUrl || "",
    onSelect: (d, ev) => mapCard(d, ev, true),
    onHover: (d, ev) => mapCard(d, ev, false),
  });
  sound.init();
  bindAlertActions();
  startClock(() => {
    renderTitle();
    // Ages on the alert cards move on even when nothing else does.
    if (Date.now() % 30000 < 1000) later("alerts", renderAlerts, 10);
  });
  new ResizeObserver(() => { updateScale(); later("resize", () => { renderCameras(); }, 300); }).observe($("panel-map"));
  await loadZones();
  renderHealth();
  renderProcesses();
  setInterval(renderProcesses, 15000);
  document.body.classList.toggle("read-only", state.readOnly);
  const live = new LiveClient({
    channels: ["summary", "alerts", "events", "kind:flood", "kind:traffic", "kind:camera"],
    heartbeatS: config.heartbeatS || 10,
    onData,
    onStatus: showConnection,
  });
  window.iocLive = live; // for tests and the soak benchmark
  live.start();
}

main();
