// A field link on a phone: one incident (title, state, severity, place, nearby cameras, procedure read only),
// and two things to do: post a note, post a photo. The token in the URL is the only permission; the server
// decides everything (what the link shows, how long it lives, what a photo may be) and this page shows it.
import { initI18n, t, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { $, pageConfig, setText, setAttr, syncList, fromHTML } from "./common.js";
import { txt, stateLabel, severityLabel } from "./incidents.js";

const SVG = "http://www.w3.org/2000/svg";
const config = pageConfig();
const base = `/api/v1/field/${encodeURIComponent(config.token || "")}`;
const REFRESH_MS = 15000;

class FieldError extends Error {
  constructor(status, body) { super(body?.error?.message || `HTTP ${status}`); this.status = status; this.code = body?.error?.code; }
}

async function call(method, url, body, type) {
  const init = { method, credentials: "omit", headers: { Accept: "application/json" } };
  if (body !== undefined) { init.body = body; init.headers["Content-Type"] = type; }
  const resp = await fetch(url, init);
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new FieldError(resp.status, data);
  return data;
}

function say(message, isError) {
  const box = $("f-message");
  box.hidden = !message;
  setText(box, message || "");
  setAttr(box, "data-kind", isError ? "error" : "info");
}

function gone(kind, detail) {
  $("f-live").hidden = true;
  $("f-gone").hidden = false;
  setText($("f-title"), t("field.heading"));
  setText($("f-gone-title"), t(kind === "gone" ? "field.gone_title" : "field.unknown_title"));
  setText($("f-gone-text"), t(kind === "gone" ? "field.gone_text" : "field.unknown_text") + (detail ? ` (${detail})` : ""));
  document.body.dataset.link = kind;
}

// ------------------------------------------------------------------ map: the point, the cameras, north, a scale

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  parent.appendChild(node);
  return node;
}

function drawMap(cams) {
  const svg = $("f-map");
  const w = 340, h = 200, reach = 550; // metres from the centre to the top and bottom edges
  const scale = (h / 2) / reach;
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const cx = w / 2, cy = h / 2;
  el("circle", { class: "f-ring", cx, cy, r: 500 * scale }, svg);
  for (const c of cams) {
    const rad = (c.bearing_deg * Math.PI) / 180;
    const x = cx + Math.sin(rad) * c.distance_m * scale, y = cy - Math.cos(rad) * c.distance_m * scale;
    el("rect", { class: "f-cam", x: x - 5, y: y - 5, width: 10, height: 10, "data-key": c.device_id }, svg);
  }
  el("circle", { class: "f-here", cx, cy, r: 8 }, svg);
  const north = el("text", { x: w - 16, y: 16, "text-anchor": "middle" }, svg);
  north.textContent = t("field.north");
  el("line", { class: "f-scale", x1: 10, y1: h - 12, x2: 10 + 200 * scale, y2: h - 12 }, svg);
  const label = el("text", { x: 10, y: h - 18 }, svg);
  label.textContent = t("field.scale", { m: fmt.num(200) });
}

// ------------------------------------------------------------------ the incident

function render(view) {
  const i = view.incident;
  document.body.dataset.state = i.state;
  setText($("f-title"), `#${i.id} ${i.title}`);
  setText($("f-severity"), severityLabel(i.severity));
  setAttr($("f-severity"), "data-severity", i.severity);
  setText($("f-state"), stateLabel(i.state));
  setAttr($("f-state"), "data-state", i.state);
  setText($("f-sub"), [txt(i.type_name), view.link.team ? t("field.team", { team: view.link.team }) : null].filter(Boolean).join(" · "));
  const located = fmt.isNum(i.lat) && fmt.isNum(i.lon);
  setText($("f-coords"), located ? `${i.lat.toFixed(5)}, ${i.lon.toFixed(5)}` : t("field.no_place"));
  $("f-geo").hidden = !located;
  if (located) $("f-geo").href = `geo:${i.lat.toFixed(6)},${i.lon.toFixed(6)}?q=${i.lat.toFixed(6)},${i.lon.toFixed(6)}`;
  setText($("f-expires"), t("field.expires", { time: fmt.dateTime(view.link.expires_at) }));
  syncList($("f-steps"), view.steps, {
    key: (s) => s.id,
    max: 100,
    create: () => fromHTML('<li class="f-step"><span class="f-step-text"></span><span class="f-step-state"></span></li>'),
    fill: (node, s) => {
      setAttr(node, "data-done", String(Boolean(s.done_at)));
      setText(node.querySelector(".f-step-text"), `${txt(s.text)}${s.required ? "" : ` (${t("console.optional")})`}`);
      setText(node.querySelector(".f-step-state"), s.done_at ? t("field.step_done", { time: fmt.time(s.done_at) }) : t("field.step_open"));
    },
  });
  $("f-posted-empty").hidden = view.posted.length > 0;
  syncList($("f-posted"), view.posted, {
    key: (p) => `${p.kind}-${p.time}`,
    max: 50,
    create: () => fromHTML('<li class="f-post"><span class="f-post-when"></span><span class="f-post-text"></span></li>'),
    fill: (node, p) => {
      setAttr(node, "data-kind", p.kind);
      setText(node.querySelector(".f-post-when"), `${fmt.time(p.time)} · ${p.actor}`);
      setText(node.querySelector(".f-post-text"), p.kind === "photo" ? (p.caption || t("field.photo")) : p.text);
      if (p.kind === "photo" && !node.querySelector("img")) {
        const img = document.createElement("img");
        img.alt = p.caption || t("field.photo");
        img.src = `${base}/media/${encodeURIComponent(p.media_id)}`;
        node.appendChild(img);
      }
    },
  });
}

function renderCams(cams) {
  $("f-cams-empty").hidden = cams.length > 0;
  drawMap(cams);
  syncList($("f-cams"), cams, {
    key: (c) => c.device_id,
    max: 20,
    create: () => fromHTML('<figure class="f-cam"><img alt="" loading="lazy"><div class="f-cam-none"></div><figcaption><span class="f-cam-name"></span><span class="f-cam-where"></span></figcaption></figure>'),
    fill: (node, c) => {
      const img = node.querySelector("img"), none = node.querySelector(".f-cam-none");
      img.hidden = !c.snapshot_at;
      none.hidden = Boolean(c.snapshot_at);
      setText(none, t("cameras.no_image"));
      if (c.snapshot_at) {
        const src = `${base}/cameras/${encodeURIComponent(c.device_id)}/snapshot?at=${encodeURIComponent(c.snapshot_at)}`;
        if (img.getAttribute("src") !== src) img.src = src;
        img.alt = c.name;
      }
      setText(node.querySelector(".f-cam-name"), c.name);
      setText(node.querySelector(".f-cam-where"), t("console.where", { m: fmt.num(c.distance_m), dir: t(`dir.${c.direction}`) }));
    },
  });
}

async function refresh() {
  try {
    const [view, cams] = await Promise.all([call("GET", base), call("GET", `${base}/cameras`)]);
    render(view);
    renderCams(cams.items);
  } catch (err) {
    if (!(err instanceof FieldError)) throw err;
    if (err.status === 404 || err.status === 410) gone(err.status === 410 ? "gone" : "unknown", err.message);
    else say(t("field.refused", { message: err.message }), true);
  }
}

async function post(form, url, body, type, done) {
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    render(await call("POST", url, body, type));
    say(t(done), false);
    form.reset();
  } catch (err) {
    if (!(err instanceof FieldError)) throw err;
    if (err.status === 410) gone("gone", err.message);
    else say(t(err.code === "too_large" ? "field.too_large" : "field.refused", { message: err.message }), true);
  } finally {
    button.disabled = false;
  }
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  if (config.link !== "live") {
    gone(config.link, config.detail);
    document.body.dataset.ready = "true";
    return;
  }
  $("f-live").hidden = false;
  $("f-note-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("f-note").value.trim();
    if (text) post(ev.target, `${base}/notes`, JSON.stringify({ text }), "application/json", "field.note_sent");
  });
  $("f-photo").addEventListener("change", () => setText($("f-photo-name"), $("f-photo").files[0]?.name || t("field.no_photo")));
  $("f-photo-form").addEventListener("reset", () => setText($("f-photo-name"), t("field.no_photo")));
  $("f-photo-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const file = $("f-photo").files[0];
    if (!file) { say(t("field.no_photo"), true); return; }
    const caption = $("f-caption").value.trim();
    const url = `${base}/photos${caption ? `?caption=${encodeURIComponent(caption)}` : ""}`;
    post(ev.target, url, file, file.type || "application/octet-stream", "field.photo_sent");
  });
  await refresh();
  setInterval(refresh, REFRESH_MS);
  document.body.dataset.ready = "true";
}

main();
