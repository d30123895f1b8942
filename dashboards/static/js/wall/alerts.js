// The alert feed: active alerts as cards (open first, critical first, newest first), acknowledged and
// resolved from the wall by operators; viewers see the cards without the buttons.
import { t, applyI18n } from "../i18n.js";
import * as fmt from "../format.js";
import { postJSON, enc } from "../api.js";
import { $, setText, setAttr, shortZone, alertTitle } from "../common.js";

const ALERTS_SHOWN = 60; // alert cards kept in the DOM
const SEVERITY_RANK = { critical: 0, warning: 1 }; // display order
const nodes = new Map(); // alert id -> its card, reused across updates
const seen = new Set(); // alert ids already shown, to tell a new one
let loaded = false;

function sorted(alerts) {
  return [...alerts].sort((a, b) => (a.state === "open" ? 0 : 1) - (b.state === "open" ? 0 : 1)
    || (SEVERITY_RANK[a.severity] ?? 2) - (SEVERITY_RANK[b.severity] ?? 2)
    || (a.opened_at < b.opened_at ? 1 : a.opened_at > b.opened_at ? -1 : 0)).slice(0, ALERTS_SHOWN);
}

function fill(state, li, a) {
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

/** Take the alerts channel's state; true when it brings a new open critical alert (not on the first load). */
export function update(state, data) {
  state.alerts = data.alerts || [];
  let fresh = false;
  const current = new Set();
  for (const a of state.alerts) {
    const id = String(a.id);
    current.add(id);
    if (!seen.has(id) && loaded && a.severity === "critical" && a.state === "open") fresh = true;
    seen.add(id);
  }
  for (const id of seen) if (!current.has(id)) seen.delete(id);
  loaded = true;
  return fresh;
}

/** Draw the cards of ``state.alerts``, reusing each alert's card. */
export function render(state) {
  const list = $("alert-list");
  const shown = sorted(state.alerts);
  const keep = new Set(shown.map((a) => String(a.id)));
  for (const [id, node] of nodes) if (!keep.has(id)) { node.remove(); nodes.delete(id); }
  shown.forEach((a, i) => {
    const id = String(a.id);
    let li = nodes.get(id);
    if (!li) {
      li = $("tpl-alert").content.firstElementChild.cloneNode(true);
      applyI18n(li);
      li.dataset.id = id;
      nodes.set(id, li);
    }
    fill(state, li, a);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  $("alerts-empty").hidden = shown.length > 0;
}

async function act(state, li, action, note, done) {
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
    done();
  }
}

/** One click and one submit listener for every card: acknowledge, resolve with a note; ``done()`` after each. */
export function bind(state, done) {
  const list = $("alert-list");
  list.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li.alert");
    const form = li.querySelector(".alert-resolve");
    switch (button.dataset.action) {
      case "ack": act(state, li, "acknowledge", "", done); break;
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
    act(state, li, "resolve", note, done);
  });
}
