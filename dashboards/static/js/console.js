// Operator console: open incidents (list) and one incident (actions, procedure, timeline, nearby devices).
// Keyboard first: j/k move, Enter opens, a takes, s starts, r resolves, n writes a note, c enters a new incident
// (a phone report: type, title, latitude and longitude), Esc leaves a field.
// The server owns every rule (states, required steps, versions); this page shows what it is sent and
// shows the server's refusals as they are. It refreshes by polling the REST API every few seconds.
import { initI18n, t, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, postJSON, enc, ApiError } from "./api.js";
import { $, pageConfig, setText, setAttr, startClock, syncList, fromHTML, bindSession } from "./common.js";
import { txt, stateLabel, severityLabel, describe } from "./incidents.js";
import { fieldLink, showPicture } from "./console-field.js";
import { loadNearby } from "./console-nearby.js";

const config = pageConfig();
const canAct = Boolean(config.user?.canAct);
let canAssign = false; // may give an incident to someone else (the server says: supervisors and admins)
const REFRESH_MS = 5000;
let items = [];
let selected = null; // id of the highlighted list row
let opened = null; // the incident shown on the right, as the server last sent it
let nearbyOf = null; // id whose nearby devices are shown


function say(message, isError = false) {
  const box = $("message");
  box.hidden = !message;
  setText(box, message || "");
  setAttr(box, "data-kind", isError ? "error" : "info");
}

// ------------------------------------------------------------------ list

async function loadList() {
  items = (await getJSON("/api/v1/incidents?state=open")).items;
  if (selected === null || !items.some((i) => i.id === selected)) selected = items.length ? items[0].id : null;
  renderList();
  setText($("refreshed"), t("console.refreshed", { time: fmt.time(new Date()) }));
}

function renderList() {
  setText($("count"), fmt.num(items.length));
  $("empty").hidden = items.length > 0;
  syncList($("items"), items, {
    key: (i) => i.id,
    max: 500,
    create: () => {
      const node = fromHTML(
        '<li class="c-item" role="option"><span class="c-sev"></span><div class="c-item-main">' +
          '<div class="c-item-title"></div><div class="c-item-sub"></div><div class="c-overdue"></div></div>' +
          '<span class="c-state"></span></li>',
      );
      node.addEventListener("click", () => { select(Number(node.dataset.key)); openIncident(Number(node.dataset.key)); });
      return node;
    },
    fill: (node, i) => {
      setAttr(node, "data-severity", i.severity);
      setAttr(node, "aria-selected", String(i.id === selected));
      setAttr(node, "data-opened", String(i.id === opened?.id));
      setText(node.querySelector(".c-sev"), severityLabel(i.severity));
      setText(node.querySelector(".c-item-title"), `#${i.id} ${i.title}`);
      const who = i.assignee ? t("console.assigned_to", { who: i.assignee }) : t("console.unassigned");
      setText(node.querySelector(".c-item-sub"), `${fmt.dateTime(i.created_at)} · ${fmt.ago(i.created_at, t)} · ${who} · ${t("console.alerts_n", { n: i.alerts })}`);
      setText(node.querySelector(".c-overdue"), overdue(i));
      const state = node.querySelector(".c-state");
      setAttr(state, "data-state", i.state);
      setText(state, stateLabel(i.state));
    },
  });
}

/** The limits an incident passed, as words ("" when none). */
function overdue(incident) {
  return (incident.escalations || []).sort().map((limit) => t(`console.overdue.${limit}`)).join(" · ");
}

function select(id) {
  selected = id;
  for (const node of $("items").children) setAttr(node, "aria-selected", String(Number(node.dataset.key) === id));
  $("items").querySelector('[aria-selected="true"]')?.scrollIntoView({ block: "nearest" });
}

function move(delta) {
  if (!items.length) return;
  const at = items.findIndex((i) => i.id === selected);
  const next = Math.min(items.length - 1, Math.max(0, (at < 0 ? 0 : at) + delta));
  select(items[next].id);
}

// ------------------------------------------------------------------ detail

async function openIncident(id) {
  if (id === null) return;
  opened = await getJSON(`/api/v1/incidents/${enc(id)}`);
  renderDetail();
  renderList();
  if (nearbyOf !== id) showNearby(id);
}

function renderDetail() {
  const d = opened;
  $("placeholder").hidden = true;
  $("body").hidden = false;
  setAttr($("detail"), "data-severity", d.severity);
  setText($("d-severity"), severityLabel(d.severity));
  setText($("d-title"), `#${d.id} ${d.title}`);
  setText($("d-type"), txt(d.procedure?.name) || d.type);
  setAttr($("d-state"), "data-state", d.state);
  setText($("d-state"), stateLabel(d.state));
  setText($("d-assignee"), d.assignee ? t("console.assigned_to", { who: d.assignee }) : t("console.unassigned"));
  setText($("d-created"), t("console.created", { time: fmt.dateTime(d.created_at), who: d.created_by }));
  setText($("d-zone"), d.zone ? t("nav.zone", { zone: d.zone }) : "");
  setText($("d-version"), t("console.version", { n: d.version }));
  setText($("d-overdue"), overdue(d));
  setText($("d-procedure"), d.procedure?.version ? t("console.procedure_version", { n: d.procedure.version }) : "");
  $("severity-pick").value = d.severity === "critical" ? "warning" : "critical";
  const open = ["new", "assigned", "in_progress"].includes(d.state);
  const enabled = {
    take: open && d.assignee !== config.user?.name,
    start: d.state === "assigned",
    resolve: open,
    close: d.state === "resolved",
    reopen: d.state === "resolved" || d.state === "closed",
    severity: d.state !== "closed",
    note: true,
    team: open && $("team-pick").options.length > 0,
    assign: open && $("operator-pick").options.length > 0,
    field_link: open,
  };
  for (const button of document.querySelectorAll("[data-action]")) {
    button.hidden = !canAct || (button.dataset.action === "assign" && !canAssign);
    button.disabled = !enabled[button.dataset.action];
  }
  $("severity-pick").hidden = !canAct;
  $("team-pick").hidden = !canAct || !$("team-pick").options.length;
  $("operator-pick").hidden = !canAssign;
  document.querySelector(".c-inputs").hidden = !canAct;
  renderSteps(d, open);
  renderTimeline(d);
}

function renderSteps(d, open) {
  syncList($("steps"), d.checklist, {
    key: (s) => s.id,
    create: () => {
      const node = fromHTML(
        '<li class="c-step"><button type="button" class="btn c-tick"></button><div class="c-step-main">' +
          '<div class="c-step-text"></div><div class="c-step-done"></div></div></li>',
      );
      node.querySelector(".c-tick").addEventListener("click", () => tick(node.dataset.key));
      return node;
    },
    fill: (node, s) => {
      const done = Boolean(s.done_at);
      setAttr(node, "data-done", String(done));
      setAttr(node, "data-required", String(s.required));
      const button = node.querySelector(".c-tick");
      setText(button, done ? "✓" : "");
      button.disabled = done || !open || !canAct;
      button.setAttribute("aria-label", t(done ? "console.step_done" : "console.tick", { step: txt(s.text) }));
      setText(node.querySelector(".c-step-text"), `${txt(s.text)}${s.required ? "" : ` (${t("console.optional")})`}`);
      const by = done ? t("console.done_by", { who: s.done_by, time: fmt.time(s.done_at) }) + (s.note ? ` · ${s.note}` : "") : "";
      setText(node.querySelector(".c-step-done"), by);
    },
  });
}

function renderTimeline(d) {
  const entries = d.timeline.map((e, i) => ({ ...e, key: i })).reverse(); // newest on top
  syncList($("timeline"), entries, {
    key: (e) => `${e.key}`,
    max: 300,
    create: () => fromHTML('<li class="c-tl"><span class="c-tl-time"></span><span class="c-tl-who"></span><div class="c-tl-what"></div><div class="c-tl-note"></div><img class="c-tl-pic" alt="" hidden></li>'),
    fill: (node, e) => {
      setAttr(node, "data-kind", e.kind);
      setText(node.querySelector(".c-tl-time"), fmt.time(e.time));
      setText(node.querySelector(".c-tl-who"), e.actor === "engine" ? t("console.engine") : e.actor);
      setText(node.querySelector(".c-tl-what"), describe(e));
      const extra = [e.kind !== "note" ? e.note : null, e.override ? t("tl.override", { reason: e.override, steps: (e.skipped || []).join(", ") }) : null];
      setText(node.querySelector(".c-tl-note"), extra.filter(Boolean).join(" · "));
      showPicture(node.querySelector(".c-tl-pic"), d.id, e);
    },
  });
}

function showNearby(id) {
  nearbyOf = id;
  const pin = (deviceId) => send(`/api/v1/incidents/${enc(opened.id)}/pins`, { device_id: deviceId });
  return loadNearby(id, { stillOpen: () => opened?.id === id, canAct, pin });
}

// ------------------------------------------------------------------ actions

async function send(url, body) {
  try {
    opened = await postJSON(url, body);
    say("");
    renderDetail();
    await loadList();
    return true;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    say(err.code === "version_conflict" ? t("console.conflict", { message: err.message }) : t("console.refused", { message: err.message }), true);
    if (err.code === "version_conflict" && opened) {
      const keep = $("message").textContent;
      await openIncident(opened.id); // show what the other operator did; the message stays
      say(keep, true);
    }
    return false;
  }
}

async function act(action) {
  if (!opened || !canAct) return;
  const base = `/api/v1/incidents/${enc(opened.id)}`;
  const note = $("note").value.trim() || null;
  const reason = $("reason").value.trim() || null;
  const body = { version: opened.version };
  let path = action;
  if (action === "resolve") Object.assign(body, { note, override_reason: reason });
  else if (action === "close") body.note = note;
  else if (action === "reopen" || action === "severity") {
    if (!reason) { say(t("console.need_reason"), true); $("reason").focus(); return; }
    Object.assign(body, action === "reopen" ? { reason } : { reason, severity: $("severity-pick").value });
  } else if (action === "team") {
    path = "assign";
    body.team = $("team-pick").value;
  } else if (action === "assign") {
    body.assignee = $("operator-pick").value;
  } else if (action === "field_link") {
    return fieldLink(opened.id, $("team-pick").value).then((m) => say(m), (err) => say(t("console.refused", { message: err.message }), true));
  } else if (action === "note") {
    if (!note) { say(t("console.need_note"), true); $("note").focus(); return; }
    path = "notes";
    delete body.version;
    body.text = note;
  }
  if (await send(`${base}/${path}`, body)) { clearIfSent("note", note); clearIfSent("reason", reason); }
}

/** Empties a field after its text was sent, unless the operator already typed something new meanwhile. */
function clearIfSent(id, sent) {
  const field = $(id);
  if (field.value.trim() === (sent ?? "")) field.value = "";
}

async function tick(step) {
  if (!opened) return;
  const note = $("note").value.trim() || null;
  if (await send(`/api/v1/incidents/${enc(opened.id)}/steps/${enc(step)}`, { note })) clearIfSent("note", note);
}

/** ``a`` on the list: take the highlighted incident (at the version the list shows), then open it. */
async function takeSelected() {
  const item = items.find((i) => i.id === selected);
  if (!item || !canAct) return;
  if (opened?.id === item.id) { await act("take"); return; }
  opened = { id: item.id, version: item.version };
  if (!(await send(`/api/v1/incidents/${enc(item.id)}/take`, { version: item.version }))) return;
  showNearby(item.id);
}

function onKey(ev) {
  const field = ev.target.closest?.("input, textarea, select");
  if (field) {
    if (ev.key === "Escape") field.blur();
    else if (ev.key === "Enter" && field.id === "note") act("note");
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey || (ev.key === "Enter" && ev.target.closest?.("button, a"))) return;
  const keys = {
    j: () => move(1),
    k: () => move(-1),
    ArrowDown: () => move(1),
    ArrowUp: () => move(-1),
    Enter: () => openIncident(selected),
    a: () => takeSelected(),
    s: () => act("start"),
    r: () => act("resolve"),
    n: () => $("note").focus(),
    c: () => openNew(),
  };
  const run = keys[ev.key];
  if (!run) return;
  ev.preventDefault();
  run();
}

async function refresh() {
  try {
    await loadList();
    if (opened && !document.activeElement?.closest?.("input, select")) {
      opened = await getJSON(`/api/v1/incidents/${enc(opened.id)}`);
      renderDetail();
    }
  } catch (err) {
    setText($("refreshed"), t("console.refresh_failed", { message: err.message }));
  }
}

// ------------------------------------------------------------------ a new incident (a phone report)

async function loadTypes() {
  const types = (await getJSON("/api/v1/procedures")).items;
  $("new-type").replaceChildren(...types.map((p) => {
    const option = document.createElement("option");
    option.value = p.type;
    option.textContent = txt(p.name);
    return option;
  }));
}

function openNew() {
  if (!canAct) return;
  $("new-form").hidden = false;
  $("new-title").focus();
}

async function createIncident(ev) {
  ev.preventDefault();
  const body = {
    type: $("new-type").value,
    title: $("new-title").value.trim(),
    lat: Number($("new-lat").value),
    lon: Number($("new-lon").value),
    severity: $("new-severity").value,
  };
  try {
    const made = await postJSON("/api/v1/incidents", body);
    $("new-form").reset();
    $("new-form").hidden = true;
    say("");
    await loadList();
    select(made.id);
    await openIncident(made.id);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    say(t("console.refused", { message: err.message }), true);
  }
}

async function loadTeams() {
  const teams = (await getJSON("/api/v1/teams")).items.filter((team) => team.enabled);
  $("team-pick").replaceChildren(...teams.map((team) => {
    const option = document.createElement("option");
    option.value = team.team_id;
    option.textContent = team.name;
    return option;
  }));
}

/** Who an incident can be given to, from the server, and whether this user may (operators only take). */
async function loadAssignees() {
  if (!canAct) return;
  const answer = await getJSON("/api/v1/assignees");
  canAssign = Boolean(answer.can_assign);
  $("operator-pick").replaceChildren(...answer.items.map((user) => {
    const option = document.createElement("option");
    option.value = user.name;
    option.textContent = user.display && user.display !== user.name ? `${user.display} (${user.name})` : user.name;
    return option;
  }));
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  bindSession($("logout"), config.user);
  startClock();
  for (const button of document.querySelectorAll("[data-action]")) button.addEventListener("click", () => act(button.dataset.action));
  $("new-open").hidden = !canAct;
  $("new-open").addEventListener("click", openNew);
  $("new-cancel").addEventListener("click", () => { $("new-form").hidden = true; });
  $("new-form").addEventListener("submit", createIncident);
  document.addEventListener("keydown", onKey);
  await Promise.all([loadList(), loadTeams(), loadTypes(), loadAssignees()]);
  const asked = Number(new URLSearchParams(location.search).get("incident"));
  if (asked) { select(asked); await openIncident(asked); }
  setInterval(refresh, REFRESH_MS);
  document.body.dataset.ready = "true";
}

main();
