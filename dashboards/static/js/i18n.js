// Message catalogues: Vietnamese by default, English on request (?lang=en or the toggle, kept in localStorage).
const STORE_KEY = "ioc.lang";
export const LANGS = ["vi", "en"];

let messages = {};
let current = "vi";

/** The language to use: ?lang=, then the stored choice, then Vietnamese. */
export function chooseLang() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGS.includes(asked)) {
    try { localStorage.setItem(STORE_KEY, asked); } catch { /* private mode: not persisted */ }
    return asked;
  }
  let stored = null;
  try { stored = localStorage.getItem(STORE_KEY); } catch { /* ignore */ }
  return LANGS.includes(stored) ? stored : "vi";
}

/** Load the catalogue and translate the static parts of the page. */
export async function initI18n() {
  current = chooseLang();
  const resp = await fetch(`/i18n/${current}.json`, { credentials: "include" });
  messages = await resp.json();
  document.documentElement.lang = current;
  applyI18n(document);
  return current;
}

export function lang() { return current; }

/** The message ``key`` with ``{name}`` placeholders filled; the key itself when missing. */
export function t(key, vars) {
  let text = messages[key];
  if (text === undefined) return key;
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (vars[name] ?? m));
  return text;
}

/** Translate every [data-i18n], [data-i18n-title], [data-i18n-aria] and [data-i18n-placeholder] under ``root``
 * (and the page title when ``root`` holds it). */
export function applyI18n(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  root.querySelectorAll("[data-i18n-aria]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nAria)); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  // Only a whole-page pass names the page: a card built later must not undo a title a page has set since.
  const title = root.querySelector?.("title[data-i18n]");
  if (title) document.title = t(title.dataset.i18n);
}

/** Switch language: remember it and reload without the ?lang= parameter. */
export function setLang(next) {
  try { localStorage.setItem(STORE_KEY, next); } catch { /* ignore */ }
  const url = new URL(location.href);
  url.searchParams.delete("lang");
  location.replace(url.toString());
}

/** Wire a language toggle button (shows the other language's code). */
export function bindLangToggle(button) {
  if (!button) return;
  const other = current === "vi" ? "en" : "vi";
  button.textContent = other.toUpperCase();
  button.setAttribute("aria-label", t("common.switch_language"));
  button.title = t("common.switch_language");
  button.addEventListener("click", () => setLang(other));
}
