// Open incidents on the wall: a badge each on the map (shape by type, colour by severity, pulsing when escalated),
// the newest most severe ones at the top of the alert feed, and the escalations addressed to supervisors as a
// banner over the map (which incident, which limit, how late, counted on from the server's due time).
import { t, lang } from "../i18n.js";
import * as fmt from "../format.js";
import { enc } from "../api.js";
import { localised } from "../contract.js";
import { $, setText, setAttr, syncList, fromHTML, shortZone } from "../common.js";

const FEED_SHOWN = 5; // incidents in the feed (the console lists them all)
const ESCALATIONS_SHOWN = 4;
const FEED_ROW = `<li class="inc"><a class="inc-link"><span class="inc-sev"></span><span class="inc-body">
  <span class="inc-title"></span><span class="inc-meta"></span></span></a></li>`;
const ESC_ROW = `<li class="esc"><a class="esc-link"><span class="esc-title"></span><span class="esc-line"></span></a></li>`;

/** The badge outline of an incident type, radius ``r`` (a drop for water, a triangle for traffic, a hexagon for
 * public order, a diamond for anything else): told apart by shape, not colour alone. */
export function shapeOf(type, r) {
  const f = (v) => (v * r).toFixed(2);
  if (type === "flood") return `M0,${f(-1.15)}C${f(0.55)},${f(-0.45)} ${f(0.95)},${f(0.05)} ${f(0.95)},${f(0.35)}A${f(0.95)},${f(0.95)} 0 1 1 ${f(-0.95)},${f(0.35)}C${f(-0.95)},${f(0.05)} ${f(-0.55)},${f(-0.45)} 0,${f(-1.15)}Z`;
  if (type === "traffic") return `M0,${f(-1.15)}L${f(1.1)},${f(0.85)}L${f(-1.1)},${f(0.85)}Z`;
  if (type === "public_order") {
    return `${[0, 1, 2, 3, 4, 5].map((k) => { const a = Math.PI / 3 * k - Math.PI / 2; return `${k ? "L" : "M"}${f(Math.cos(a))},${f(Math.sin(a))}`; }).join("")}Z`;
  }
  return `M0,${f(-1.15)}L${f(1.15)},0L0,${f(1.15)}L${f(-1.15)},0Z`;
}

function typeName(i) { return localised(i.type_name, lang()) || i.type; }

/** A badge's tooltip: type, number, title, severity, state. */
export function label(i) {
  return `${typeName(i)} #${i.id}: ${i.title} · ${t(`severity.${i.severity}`)} · ${t(`incident_state.${i.state}`)}`;
}

const SEVERITY_ORDER = { critical: 0, warning: 1 }; // display order

/** Take the incidents channel's state, ordered here (merged deltas append new items at the end): most severe,
 * then newest; escalations newest first. */
export function update(state, data) {
  state.incidents = [...(data.incidents || [])].sort((a, b) => (SEVERITY_ORDER[a.severity] ?? 2) - (SEVERITY_ORDER[b.severity] ?? 2) || b.id - a.id);
  state.escalations = [...(data.escalations || [])].sort((a, b) => (a.escalated_at < b.escalated_at ? 1 : a.escalated_at > b.escalated_at ? -1 : 0));
}

function fillFeed(state, li, i) {
  setAttr(li, "data-severity", i.severity);
  setAttr(li, "data-escalated", i.escalated ? "1" : "0");
  setAttr(li.firstElementChild, "href", `/console?incident=${enc(String(i.id))}`);
  setText(li.querySelector(".inc-sev"), t(`severity.${i.severity}`));
  setText(li.querySelector(".inc-title"), `#${i.id} ${i.title}`);
  const zone = shortZone(state.zoneNames.get(i.zone) || i.zone || "");
  const who = i.assignee || i.team || t("incident.unassigned");
  setText(li.querySelector(".inc-meta"), `${typeName(i)} · ${zone} · ${t(`incident_state.${i.state}`)} · ${who} · ${fmt.ago(i.created_at, t)}`);
}

function lateMin(e, now) { return Math.max(0, (now - Date.parse(e.due_at)) / 60000); }

function fillEscalation(state, li, e, now) {
  setAttr(li, "data-severity", e.severity);
  setAttr(li.firstElementChild, "href", `/console?incident=${enc(String(e.incident_id))}`);
  setText(li.querySelector(".esc-title"), `#${e.incident_id} ${e.title}`);
  setText(li.querySelector(".esc-line"), t(`escalation.${e.limit}`, {
    minutes: fmt.num(e.minutes, e.minutes < 1 ? 2 : 0),
    late: fmt.num(lateMin(e, now), 0),
    zone: shortZone(state.zoneNames.get(e.zone) || e.zone || ""),
  }));
}

/** The feed and the escalation banner (cheap: called every second too, so "how late" moves on). */
export function render(state) {
  const now = Date.now();
  const feed = state.incidents || [];
  syncList($("incident-feed"), feed, { key: (i) => i.id, max: FEED_SHOWN, create: () => fromHTML(FEED_ROW), fill: (li, i) => fillFeed(state, li, i) });
  setText($("incidents-open"), fmt.num(feed.length));
  const escalations = state.escalations || [];
  const banner = $("escalations");
  banner.hidden = escalations.length === 0;
  setText($("escalations-count"), t("escalation.count", { n: fmt.num(escalations.length) }));
  syncList($("escalation-list"), escalations, {
    key: (e) => e.key, max: ESCALATIONS_SHOWN, create: () => fromHTML(ESC_ROW), fill: (li, e) => fillEscalation(state, li, e, now),
  });
}
