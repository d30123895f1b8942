// The map panel: the city map (map.js draws it), the details card of a hovered or clicked device, the scale bar.
import { t, lang } from "../i18n.js";
import * as fmt from "../format.js";
import { enc } from "../api.js";
import { CityMap } from "../map.js";
import { $, setText, latest, kindLabel, eventLabel } from "../common.js";
import { recentEvent } from "./cameras.js";
import { airBand, localised, metrics, pollutantName } from "../contract.js";
import { metricLabel, unitLabel } from "../drill.js";
import { paintFill } from "../aqi.js";
import { shapeOf, label } from "./incidents.js";

const SCALE_KM = 2;
let map = null;
let scaleDrawnFor = ""; // the viewBox the scale bar was last measured for

function cardRows(state, d) {
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
  } else if (d.kind === "air") {
    const p = (state.air?.points || []).find((q) => q.device_id === d.device_id) || {};
    const band = airBand(p.band);
    rows.push([t("air.aqi"), `${fmt.num(p.aqi)} · ${band ? localised(band.label, lang()) : fmt.DASH} · ${pollutantName(p.dominant) || fmt.DASH}`]);
    rows.push(["PM2.5", `${fmt.num(latest(d, "pm25_ugm3"), 1)} ${t("unit.ugm3")}`]);
    rows.push([t("air.us_view"), fmt.num(p.us_aqi)]);
    if (p.suspect) rows.push([t("air.suspect"), t("air.suspect_detail", { median: fmt.num(p.suspect.median, 1), n: p.suspect.neighbours })]);
  } else if (d.kind === "camera") {
    const e = recentEvent(state, d.device_id);
    rows.push([t("cameras.last_event"), e ? `${eventLabel(e.type)} · ${fmt.hm(e.time)}` : fmt.DASH]);
  } else {
    // Any other kind: each metric of the kind (the server's list and units) with its latest value.
    for (const [metric, unit] of Object.entries(metrics(d.kind))) {
      if (latest(d, metric) !== null) rows.push([metricLabel(metric), `${fmt.num(latest(d, metric), 1)} ${unitLabel(unit)}`]);
    }
  }
  return rows;
}

function placeCard(card, deviceId) {
  const pos = map.screenPos(deviceId);
  const box = card.parentElement.getBoundingClientRect();
  card.hidden = false;
  if (!pos) return;
  const w = card.offsetWidth;
  const h = card.offsetHeight;
  const x = pos.x + 16 + w > box.width ? pos.x - 16 - w : pos.x + 16;
  const y = Math.min(Math.max(4, pos.y - h / 2), box.height - h - 4);
  card.style.left = `${Math.max(4, x)}px`;
  card.style.top = `${y}px`;
}

// Hover shows a card, a click pins it (with a link to the device page) until another click.
function showCard(state, d, pinned) {
  const card = $("map-card");
  if (!pinned && card.dataset.pinned === "1") return;
  if (!d) {
    card.hidden = true;
    card.dataset.pinned = "0";
    return;
  }
  card.dataset.pinned = pinned ? "1" : "0";
  setText($("map-card-title"), d.name || d.device_id);
  $("map-card-body").replaceChildren(...cardRows(state, d).flatMap(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    return [dt, dd];
  }));
  $("map-card-link").href = `/devices/${enc(d.device_id)}`;
  $("map-card-link").hidden = !pinned;
  placeCard(card, d.device_id);
}

/**
 * Draw the scale bar for the map's current size: measured (a forced layout) only when the map was ``resized``
 * or its viewBox changed, never on the many updates that only move markers.
 */
export function updateScale(resized = false) {
  const svg = $("city-map");
  const vb = svg.viewBox.baseVal;
  if (!vb || !vb.width) return;
  const viewBox = `${vb.x} ${vb.y} ${vb.width} ${vb.height}`;
  if (!resized && viewBox === scaleDrawnFor) return;
  scaleDrawnFor = viewBox;
  const box = svg.getBoundingClientRect();
  const pxPerUnit = Math.min(box.width / vb.width, box.height / vb.height);
  const px = SCALE_KM * (1000 / 110.57) * pxPerUnit; // map units: 1000 per degree of latitude (110.57 km)
  $("scale-bar").style.width = `${px.toFixed(0)}px`;
  setText($("scale-text"), `${fmt.num(SCALE_KM)} km`);
}

/** Create the map in #city-map (tiles only when the server configures them). */
export function init(state, tileUrl) {
  map = new CityMap($("city-map"), {
    tileUrl: tileUrl || "",
    onSelect: (d) => showCard(state, d, true),
    onHover: (d) => showCard(state, d, false),
  });
}

/** The zones (names and centres): they fix the map's projection. */
export function setZones(zones) { map.setZones(zones); updateScale(true); }

/** Add or update devices of one kind. */
export function setDevices(devices) { map.setDevices(devices); }

/** Rings around devices with an active alert. */
export function setAlerts(alerts) { map?.setAlerts(alerts); }

/** The air layer: sensors as discs in their AQI band's colour (from the ``air`` channel). */
export function setAir(points) {
  map.setAir(points, paintFill);
}

/** Open incidents as badges (wall/incidents.js says how each type looks). */
export function setIncidents(incidents) { map?.setIncidents(incidents, shapeOf, label); }

/** Zone halos coloured by the summary's zone states. */
export function setZoneStates(zones) { map.setZoneStates(zones); }
