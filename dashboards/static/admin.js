// Users and audit log for administrators. Every value from the server is shown with textContent
// (never innerHTML), with control characters made visible, so stored text cannot inject markup.
import { call, initMessages, t, visible } from "./login.js";

const message = document.getElementById("message");
let before = null;

/** A table cell holding ``value`` as text. */
function cell(value, mono = false) {
  const td = document.createElement("td");
  td.textContent = visible(value);
  if (mono) td.className = "mono";
  return td;
}

function fail(r) {
  if (r.status === 401) {
    location.assign("/login?next=/admin");
    return;
  }
  const reason = r.status === 403 ? t("security.forbidden") : visible(r.body?.error?.message ?? r.status);
  message.textContent = t("security.error", { reason });
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

function showOneTime(name, password) {
  const box = document.getElementById("one-time");
  box.textContent = t("security.one_time", { name: visible(name), password });
  box.hidden = false;
}

async function loadUsers() {
  const r = await call("GET", "/api/v1/users");
  if (r.status !== 200) return fail(r);
  const body = document.getElementById("users");
  body.replaceChildren();
  for (const user of r.body.users) {
    const tr = document.createElement("tr");
    const flags = [
      user.disabled ? t("security.disabled") : "",
      user.must_change ? t("security.must_change_flag") : "",
      user.display ? t("security.display_flag") : "",
    ];
    tr.append(cell(user.name), cell(t(`security.role.${user.role}`)), cell(flags.filter(Boolean).join(", ")));
    const actions = document.createElement("td");
    const path = `/api/v1/users/${encodeURIComponent(user.name)}`;
    actions.append(
      button(t(user.disabled ? "security.enable" : "security.disable"), async () => {
        const res = await call("POST", `${path}/${user.disabled ? "enable" : "disable"}`);
        if (res.status !== 200) return fail(res);
        await refresh();
      }),
      " ",
      button(t("security.reset"), async () => {
        const res = await call("POST", `${path}/reset`);
        if (res.status !== 200) return fail(res);
        showOneTime(user.name, res.body.password);
        await refresh();
      }),
    );
    tr.append(actions);
    body.append(tr);
  }
}

function showKey(name, key) {
  const box = document.getElementById("key-once");
  box.textContent = t("security.key_once", { name: visible(name), key });
  box.hidden = false;
}

/** An integer as the page's language writes it. */
function count(n) {
  return Number(n).toLocaleString(document.documentElement.lang === "vi" ? "vi-VN" : "en-GB");
}

async function loadKeys() {
  const r = await call("GET", "/api/v1/apikeys");
  if (r.status !== 200) return fail(r);
  document.getElementById("keys-hint").textContent = t("security.apikeys_hint", { header: r.body.header });
  const body = document.getElementById("keys");
  body.replaceChildren();
  for (const key of r.body.keys) {
    const tr = document.createElement("tr");
    tr.dataset.key = key.id;
    const when = (v) => String(v).replace("T", " ").slice(0, 16);
    const status = key.revoked_at ? t("security.revoked_at", { time: when(key.revoked_at) }) : t("security.active");
    tr.append(cell(key.id, true), cell(key.name), cell(count(key.per_minute)), cell(count(key.rows_per_day)),
      cell(count(key.requests_today)), cell(count(key.rows_today)), cell(when(key.created_at)), cell(status));
    const actions = document.createElement("td");
    if (!key.revoked_at) {
      actions.append(button(t("security.revoke"), async () => {
        const res = await call("POST", `/api/v1/apikeys/${encodeURIComponent(key.id)}/revoke`);
        if (res.status !== 200) return fail(res);
        await refresh();
      }));
    }
    tr.append(actions);
    body.append(tr);
  }
}

async function loadAudit(append) {
  const params = new URLSearchParams({ limit: "100" });
  for (const key of ["action", "actor", "target"]) {
    const value = document.getElementById(`f-${key}`).value.trim();
    if (value) params.set(key, value);
  }
  if (append && before !== null) params.set("before", String(before));
  const r = await call("GET", `/api/v1/audit?${params}`);
  if (r.status !== 200) return fail(r);
  const body = document.getElementById("audit");
  if (!append) body.replaceChildren();
  for (const e of r.body.entries) {
    const tr = document.createElement("tr");
    tr.dataset.outcome = e.outcome;
    const detail = e.detail && Object.keys(e.detail).length ? JSON.stringify(e.detail) : "";
    tr.append(cell(String(e.time).replace("T", " ").slice(0, 19)), cell(e.actor), cell(e.action), cell(e.target),
      cell(t(`security.outcome.${e.outcome}`)), cell(e.source), cell(detail, true));
    body.append(tr);
  }
  before = r.body.next_before;
  document.getElementById("older").hidden = before === null;
}

async function refresh() {
  message.textContent = "";
  await loadUsers();
  await loadKeys();
  await loadAudit(false);
}

async function main() {
  await initMessages();
  const me = await call("GET", "/api/v1/me");
  if (me.status !== 200) return fail(me);
  document.getElementById("who").textContent =
    t("security.signed_in_as", { name: visible(me.body.name), role: t(`security.role.${me.body.role}`) });
  document.getElementById("logout").addEventListener("click", () => {
    // A form navigation: the server's 303 to the login page is the only navigation (see common.js bindSession).
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/api/v1/auth/logout";
    document.body.append(form);
    form.submit();
  });
  document.getElementById("add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = document.getElementById("new-name").value;
    const display = document.getElementById("new-display").checked;
    const role = display ? "viewer" : document.getElementById("new-role").value;
    const r = await call("POST", "/api/v1/users", { name, role, display });
    if (r.status !== 201) return fail(r);
    document.getElementById("new-name").value = "";
    showOneTime(r.body.name, r.body.password);
    await refresh();
  });
  document.getElementById("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const quota = (id) => (document.getElementById(id).value ? Number(document.getElementById(id).value) : null);
    const name = document.getElementById("key-name").value;
    const r = await call("POST", "/api/v1/apikeys",
      { name, per_minute: quota("key-per-minute"), rows_per_day: quota("key-rows") });
    if (r.status !== 201) return fail(r);
    for (const id of ["key-name", "key-per-minute", "key-rows"]) document.getElementById(id).value = "";
    await refresh();
    showKey(r.body.name, r.body.key);
  });
  document.getElementById("audit-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit(false);
  });
  document.getElementById("older").addEventListener("click", () => loadAudit(true));
  await refresh();
}

main();
