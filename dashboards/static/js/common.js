// What every page shares: configuration, the clock, the connection indicator, small DOM helpers.
import { t, lang } from "./i18n.js";
import * as fmt from "./format.js";
import { startLogout } from "./api.js";
import { serverLabel } from "./contract.js";

/** The page's configuration embedded by dashboards/pages.py. */
export { pageConfig } from "./contract.js";

export const $ = (id) => document.getElementById(id);

/** Set text only when it changed (keeps layout work and mutation observers quiet). */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (node && node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/** The local clock (Asia/Ho_Chi_Minh) in #clock-time / #clock-date, updated every second. */
export function startClock(tick = () => {}) {
  const timeNode = $("clock-time");
  const dateNode = $("clock-date");
  const update = () => {
    const now = new Date();
    setText(timeNode, fmt.time(now));
    setText(dateNode, fmt.date(now));
    tick(now);
  };
  update();
  return setInterval(update, 1000);
}

/**
 * Reflect the live client's status in #conn (text + icon shape via data-state, never colour alone);
 * "database" says since when the server's database is away (the figures shown are its last state).
 */
export function showConnection(status, info) {
  const box = $("conn");
  if (!box) return;
  const shown = status === "reconnecting" && info?.stale ? "reconnecting" : status;
  setAttr(box, "data-state", shown);
  setText($("conn-text"), t(`conn.${shown}`, { time: info?.since ? fmt.hm(info.since) : fmt.DASH }));
  const age = $("conn-age");
  const current = status === "live" || status === "database";
  if (age) setText(age, current || !info?.silentMs || info.silentMs > 1e12 ? "" : t("unit.ago_s", { n: Math.round(info.silentMs / 1000) }));
  document.body.classList.toggle("is-stale", Boolean(info?.stale) && status !== "live");
}

/** Coalesce repeated requests to render ``name`` into one call after ``ms``. */
const pending = new Map();
export function later(name, fn, ms = 200) {
  if (pending.has(name)) return;
  pending.set(name, setTimeout(() => { pending.delete(name); fn(); }, ms));
}

/** A device's latest value of ``metric``, or null. */
export function latest(device, metric) {
  const v = device?.latest?.[metric]?.value;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Short zone name for tight spots ("Thủ Thiêm (Thủ Đức)" -> "Thủ Thiêm"). */
export function shortZone(name) { return (name || "").replace(/\s*\(.*\)\s*$/, ""); }

/** A trend against yesterday: {arrow, text, cls}; ``goodWhenUp`` chooses the colour meaning. */
export function trend(now, yesterday, digits = 0, goodWhenUp = false) {
  if (!fmt.isNum(now) || !fmt.isNum(yesterday)) return { arrow: "", text: t("trend.no_data"), cls: "flat" };
  const delta = now - yesterday;
  const eps = digits ? 10 ** -digits / 2 : 0.5;
  if (Math.abs(delta) < eps) return { arrow: "=", text: t("trend.same"), cls: "flat" };
  const up = delta > 0;
  const good = up === goodWhenUp;
  return {
    arrow: up ? "▲" : "▼",
    text: t("trend.vs_yesterday", { delta: `${up ? "+" : "−"}${fmt.num(Math.abs(delta), digits)}` }),
    cls: good ? "good" : "bad",
  };
}

/** The logout button: shows who is logged in (title), ends the session, goes to the login page. */
export function bindSession(button, user) {
  if (!button) return;
  if (!user) { button.hidden = true; return; }
  const label = t("session.logout", { name: user.name, role: t(`role.${user.role}`) });
  button.title = label;
  button.setAttribute("aria-label", label);
  // A form navigation, not fetch-then-navigate: the server's 303 to the login page is the one navigation, so no
  // request of ours is cut off by it (a 204 seen by fetch can still be "pending" when the page leaves).
  button.addEventListener("click", () => {
    startLogout();
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/api/v1/auth/logout";
    document.body.append(form);
    form.submit();
  });
}

/** A zone's display name in the current language (``metadata.name_en`` in English when known). */
export function zoneName(zone) {
  if (!zone) return "";
  return (lang() === "en" && zone.metadata?.name_en) || zone.name || zone.zone_id || "";
}

/** An alert's title in the current language: the rule's catalogued title when there is one. */
export function alertTitle(a) {
  const key = `rule.${a.rule}`;
  const text = t(key, { name: a.device_name || a.device_id || "" });
  return text === key ? a.title || a.rule || "" : text;
}

/** A kind's name: the catalogue's, else the kinds file's label, else the kind itself. */
export function kindLabel(kind) { const k = `kind.${kind}`; const v = t(k); return v === k ? serverLabel("kinds", kind, lang()) || kind : v; }

export function eventLabel(type) {
  const k = `event.${type}`;
  const v = t(k);
  return v === k ? (type || "").replace(/[._]/g, " ") : v;
}

/**
 * Make ``list``'s children match ``items`` (bounded by ``max``), reusing the element of each key:
 * ``create()`` makes a new element once, ``fill(node, item)`` updates it.
 */
export function syncList(list, items, { key, create, fill, max = 50 }) {
  const shown = items.slice(0, max);
  const byKey = new Map([...list.children].map((n) => [n.dataset.key, n]));
  const wanted = new Set(shown.map((it) => String(key(it))));
  for (const [k, node] of byKey) if (!wanted.has(k)) node.remove();
  shown.forEach((item, i) => {
    const k = String(key(item));
    let node = byKey.get(k);
    if (!node) { node = create(); node.dataset.key = k; }
    fill(node, item);
    if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
  });
}

/** An element from an HTML string (static markup only: never interpolate data into it). */
export function fromHTML(markup) {
  const tpl = document.createElement("template");
  tpl.innerHTML = markup.trim();
  return tpl.content.firstElementChild;
}

