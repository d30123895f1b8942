// What the drill-down pages share: the time-range buttons, device rows, history fetches.
import { t, lang } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, enc } from "./api.js";
import { RANGES, readingsQuery } from "./charts.js";
import { setText, setAttr, latest, kindLabel } from "./common.js";
import { metrics, serverLabel } from "./contract.js";

/** The chosen range (?range=, default 24h) and the buttons wired to change it. */
export function bindRanges(onChange) {
  const box = document.getElementById("ranges");
  let range = new URLSearchParams(location.search).get("range");
  if (!(range in RANGES)) range = "24h";
  const show = () => box.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range)));
  show();
  box.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-range]");
    if (!b || b.dataset.range === range) return;
    range = b.dataset.range;
    const url = new URL(location.href);
    url.searchParams.set("range", range);
    history.replaceState(null, "", url);
    show();
    onChange(range);
  });
  return () => range;
}

/** Readings of one device metric over ``range``; an empty list when there are none or on error. */
export async function readings(deviceId, metric, range) {
  try {
    const body = await getJSON(`/api/v1/devices/${enc(deviceId)}/readings?${readingsQuery(metric, range)}`);
    return body?.points || [];
  } catch {
    return [];
  }
}

export function csvUrl(deviceId, metric, range) {
  return `/api/v1/devices/${enc(deviceId)}/readings.csv?${readingsQuery(metric, range)}`;
}

export function metricLabel(metric) {
  const k = `metric.${metric}`;
  const v = t(k);
  return v === k ? serverLabel("metrics", metric, lang()) || metric : v;
}

/** A unit as shown ("count" is a word, translated; the others are symbols). */
export function unitLabel(unit) {
  return unit === "count" ? t("unit.count") : unit || "";
}

/** A device status badge: icon shape + text, never colour alone. */
export function statusBadge(node, status) {
  setAttr(node, "data-state", status || "unknown");
  setText(node.querySelector(".text"), t(`status.${status || "unknown"}`));
}

/** The one number that says most about a device, with its unit. */
export function keyValue(d) {
  if (d.kind === "flood") return `${fmt.num(latest(d, "water_level_cm"), 1)} ${t("unit.cm")}`;
  if (d.kind === "traffic") return `${fmt.num(latest(d, "avg_speed_kmh"), 0)} ${t("unit.kmh")}`;
  if (d.kind === "camera") return `${fmt.num(latest(d, "people_count"), 0)} ${t("unit.people")}`;
  // Any other kind: its first metric (the kinds file's order) with the server's unit.
  const [first, unit] = Object.entries(metrics(d.kind))[0] || [];
  return first ? `${fmt.num(latest(d, first), 1)} ${unitLabel(unit)}` : fmt.DASH;
}

export const DEVICE_ROW = `<li class="row"><span class="kind-icon" aria-hidden="true"></span><a class="name"></a>
  <span class="badge status"><span class="icon" aria-hidden="true"></span><span class="text"></span></span>
  <span class="meta"></span><span class="value"></span></li>`;

export function fillDeviceRow(li, d) {
  li.querySelector(".kind-icon").className = `kind-icon k-${d.kind}`;
  const a = li.querySelector(".name");
  setText(a, d.name || d.device_id);
  setAttr(a, "href", `/devices/${enc(d.device_id)}`);
  statusBadge(li.querySelector(".status"), d.status);
  setText(li.querySelector(".meta"), `${d.device_id} · ${kindLabel(d.kind)} · ${fmt.ago(d.last_seen, t)}`);
  setText(li.querySelector(".value"), keyValue(d));
}
