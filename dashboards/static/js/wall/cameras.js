// The camera panel: the cameras nearest an alert (else the most recent events), each with its latest snapshot
// and, over it, its latest event; a camera with a recent incident is marked on the map too.
import { t, applyI18n } from "../i18n.js";
import * as fmt from "../format.js";
import { getJSON, enc } from "../api.js";
import { distanceKm } from "../map.js";
import { incidentWindowS, isIncident } from "../contract.js";
import { $, setText, setAttr, later, eventLabel } from "../common.js";

// An event can be stored a moment before its camera's snapshot, so it may say snapshot_url: null although
// a picture follows. For the cameras on screen, ask the events API again (it answers with the snapshot
// state of now), at most once per camera per PROBE_MS: never a request that could 404.
const PROBE_MS = 20000;
const SNAPSHOT_AFTER_EVENT_MS = 3000;
const probedAt = new Map();
const snapshotStamp = new Map(); // camera id -> cache-busting stamp of its latest snapshot

/** The camera's latest event if it is recent (inside the server's incident window), else null. */
export function recentEvent(state, cameraId) {
  const now = Date.now();
  const windowS = incidentWindowS();
  for (const e of state.events) {
    if (e.device_id !== cameraId) continue;
    if (fmt.ageS(e.time, now) > windowS) return null;
    return e; // events are newest first
  }
  return null;
}

/** Set ``incident`` on each camera (a recent event that is an incident): the map draws it. */
export function markIncidents(state) {
  for (const cam of state.devices.camera || []) cam.incident = isIncident(recentEvent(state, cam.device_id));
}

// The tiles per row (CSS --cams), read once per size: a computed style on every redraw forces a style pass.
let perRow = 0;

function cameraCount() {
  if (!perRow) perRow = Number(getComputedStyle($("camera-grid")).getPropertyValue("--cams").trim()) || 6;
  return perRow;
}

/** The page changed size: read the tiles per row again at the next redraw. */
export function resized() { perRow = 0; }

function ranked(state, n) {
  const alertPlaces = state.alerts.map((a) => state.byId.get(a.device_id)).filter((d) => d && fmt.isNum(d.lat));
  const items = (state.devices.camera || []).map((c) => {
    const dist = alertPlaces.length && fmt.isNum(c.lat) ? Math.min(...alertPlaces.map((p) => distanceKm(c, p))) : Infinity;
    return { c, dist, ev: recentEvent(state, c.device_id) };
  }).sort((a, b) => a.dist - b.dist || (b.ev?.time || "").localeCompare(a.ev?.time || "") || a.c.device_id.localeCompare(b.c.device_id))
    .slice(0, n);
  return { items, nearAlerts: alertPlaces.length > 0 };
}

function newTile() {
  const tile = $("tpl-camera").content.firstElementChild.cloneNode(true);
  applyI18n(tile);
  const img = tile.querySelector(".cam-img");
  // One load/error pair per tile, for its whole life.
  img.addEventListener("load", () => { img.hidden = false; tile.querySelector(".cam-placeholder").hidden = true; });
  img.addEventListener("error", () => { img.hidden = true; tile.querySelector(".cam-placeholder").hidden = false; });
  return tile;
}

function fillTile(state, tile, { c, dist, ev }) {
  setAttr(tile, "href", `/devices/${enc(c.device_id)}`);
  setAttr(tile, "data-device", c.device_id);
  setAttr(tile, "data-status", c.status || "unknown");
  setAttr(tile, "data-incident", isIncident(ev) ? "yes" : "no");
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
  const stamp = snapshotStamp.get(c.device_id) || c.snapshot_at;
  const img = tile.querySelector(".cam-img");
  if (stamp) {
    const src = `/api/v1/devices/${enc(c.device_id)}/snapshot?v=${encodeURIComponent(stamp)}`;
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
  } else if (img.hasAttribute("src")) {
    img.removeAttribute("src");
    img.hidden = true;
    tile.querySelector(".cam-placeholder").hidden = false;
  }
  return Boolean(stamp);
}

/** Draw as many tiles as the grid holds (CSS ``--cams``), reusing them. */
export function render(state) {
  const grid = $("camera-grid");
  const n = cameraCount();
  const { items, nearAlerts } = ranked(state, n);
  while (grid.children.length < n) grid.appendChild(newTile());
  while (grid.children.length > n) grid.lastElementChild.remove();
  setText($("cameras-note"), nearAlerts ? t("cameras.nearest_alert") : t("cameras.latest"));
  [...grid.children].forEach((tile, i) => {
    const item = items[i];
    tile.hidden = !item;
    if (!item) return;
    if (!fillTile(state, tile, item)) later("probe", () => probeSnapshots(state, items.map((r) => r.c.device_id)), 3000);
  });
}

function probeSnapshots(state, cameraIds) {
  const now = Date.now();
  for (const id of cameraIds) {
    if (snapshotStamp.has(id) || now - (probedAt.get(id) || 0) < PROBE_MS) continue;
    probedAt.set(id, now);
    getJSON(`/api/v1/events?device_id=${enc(id)}&limit=1`).then((body) => {
      const e = body?.items?.[0];
      if (e?.snapshot_url) {
        snapshotStamp.set(id, e.time);
        later("cameras", () => render(state), 100);
      }
    }).catch(() => {});
  }
  for (const id of probedAt.keys()) if (!state.byId.has(id)) probedAt.delete(id);
}

/** Take the events channel's state: the events, and which cameras have a newer snapshot to show. */
export function update(state, data, msg) {
  state.events = data.events || [];
  const items = msg.type === "snapshot" ? [...state.events].reverse() : msg.data.events || [];
  for (const e of items) {
    if (e.snapshot_url) {
      snapshotStamp.set(e.device_id, e.time);
    } else if (msg.type === "delta" && snapshotStamp.has(e.device_id)) {
      // A camera that has pictures: its new one is stored just after the event; reload it a little later.
      setTimeout(() => { snapshotStamp.set(e.device_id, e.time); later("cameras", () => render(state), 100); }, SNAPSHOT_AFTER_EVENT_MS);
    }
  }
  // Bounded: only cameras we know.
  for (const id of snapshotStamp.keys()) if (!state.byId.has(id)) snapshotStamp.delete(id);
}
