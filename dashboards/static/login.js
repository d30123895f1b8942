// Login page, and the small helpers the admin page shares: messages, safe display, JSON calls.
const STORE_KEY = "ioc.lang";
const LANGS = ["vi", "en"];
let messages = {};
let current = "vi";

/** The chosen language: ?lang=, then the stored choice, then Vietnamese. */
function chooseLang() {
  const asked = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try { stored = localStorage.getItem(STORE_KEY); } catch { /* private mode */ }
  if (LANGS.includes(asked)) return asked;
  return LANGS.includes(stored) ? stored : "vi";
}

/** Load this page's messages and translate every [data-i18n] element (as text, never as HTML). */
export async function initMessages() {
  current = chooseLang();
  const resp = await fetch(`/auth/i18n/${current}.json`, { credentials: "same-origin" });
  messages = resp.ok ? await resp.json() : {};
  document.documentElement.lang = current;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    if (messages[el.dataset.i18n] !== undefined) el.textContent = messages[el.dataset.i18n];
  }
  const toggle = document.getElementById("lang-toggle");
  if (toggle) {
    toggle.addEventListener("click", () => {
      try { localStorage.setItem(STORE_KEY, current === "vi" ? "en" : "vi"); } catch { /* ignore */ }
      const url = new URL(location.href);
      url.searchParams.delete("lang");
      location.replace(url);
    });
  }
}

/** The message ``key`` with ``{name}`` placeholders filled. */
export function t(key, vars) {
  const text = messages[key] ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (m, name) => String(vars[name] ?? m)) : text;
}

/** ``value`` as text with control, format and separator characters made visible (as \uXXXX). */
export function visible(value) {
  return String(value ?? "").replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu,
    (ch) => `\\u${ch.codePointAt(0).toString(16).padStart(4, "0")}`);
}

/** POST/GET JSON to our own API; resolves to {status, body, headers}. */
export async function call(method, path, body) {
  const resp = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch { /* 204 */ }
  return { status: resp.status, body: data, headers: resp.headers };
}

/** Where to go after logging in: a same-site path from ?next=, else the wall. */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/(?![/\\])[\w\-./?=&%]*$/.test(next) ? next : "/wall";
}

async function loginPage() {
  await initMessages();
  const message = document.getElementById("message");
  const loginForm = document.getElementById("login-form");
  const changeForm = document.getElementById("change-form");
  let password = "";

  loginForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const name = document.getElementById("name").value;
    password = document.getElementById("password").value;
    const r = await call("POST", "/api/v1/auth/login", { name, password });
    if (r.status === 200 && r.body.must_change) {
      loginForm.hidden = true;
      changeForm.hidden = false;
      document.getElementById("new-password").focus();
    } else if (r.status === 200) {
      location.assign(nextPath());
    } else if (r.status === 429) {
      message.textContent = t("security.throttled", { seconds: r.headers.get("Retry-After") || "?" });
    } else if (r.status === 401) {
      message.textContent = t("security.login_failed");
    } else {
      message.textContent = t("security.error", { reason: visible(r.body?.error?.message ?? r.status) });
    }
  });

  changeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const r = await call("POST", "/api/v1/auth/password",
      { current: password, new: document.getElementById("new-password").value });
    password = "";
    if (r.status === 204) {
      changeForm.hidden = true;
      loginForm.hidden = false;
      document.getElementById("password").value = "";
      message.textContent = t("security.password_changed");
    } else if (r.status === 429) {
      message.textContent = t("security.throttled", { seconds: r.headers.get("Retry-After") || "?" });
    } else {
      message.textContent = t("security.error", { reason: visible(r.body?.error?.message ?? r.status) });
    }
  });
}

if (document.body.dataset.page === "login") loginPage();
