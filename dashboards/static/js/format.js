// Numbers and times as people in Ho Chi Minh City read them: vi-VN digits, local time (UTC+7).
import { lang } from "./i18n.js";

export const TZ = "Asia/Ho_Chi_Minh";
export const DASH = "—";
const numberFormats = new Map();

function locale() { return lang() === "en" ? "en-GB" : "vi-VN"; }

function numberFormat(digits) {
  const key = `${locale()}:${digits}`;
  let nf = numberFormats.get(key);
  if (!nf) {
    nf = new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
    numberFormats.set(key, nf);
  }
  return nf;
}

export function isNum(v) { return typeof v === "number" && Number.isFinite(v); }

/** A number with ``digits`` decimals, or the dash when missing. */
export function num(v, digits = 0) { return isNum(v) ? numberFormat(digits).format(v) : DASH; }

let timeFmt, dateFmt, dateTimeFmt, shortFmt;
function formats() {
  if (!timeFmt || timeFmt.resolvedOptions().locale !== new Intl.DateTimeFormat(locale()).resolvedOptions().locale) {
    const base = { timeZone: TZ, hourCycle: "h23" };
    timeFmt = new Intl.DateTimeFormat(locale(), { ...base, hour: "2-digit", minute: "2-digit", second: "2-digit" });
    shortFmt = new Intl.DateTimeFormat(locale(), { ...base, hour: "2-digit", minute: "2-digit" });
    dateFmt = new Intl.DateTimeFormat(locale(), { timeZone: TZ, weekday: "long", day: "2-digit", month: "2-digit", year: "numeric" });
    dateTimeFmt = new Intl.DateTimeFormat(locale(), { ...base, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" });
  }
}

function toDate(v) {
  if (v instanceof Date) return v;
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** HH:MM:SS local. */
export function time(v) { formats(); const d = toDate(v); return d ? timeFmt.format(d) : DASH; }
/** HH:MM local. */
export function hm(v) { formats(); const d = toDate(v); return d ? shortFmt.format(d) : DASH; }
/** Weekday, dd/mm/yyyy local. */
export function date(v) { formats(); const d = toDate(v); return d ? dateFmt.format(d) : DASH; }
/** dd/mm HH:MM local. */
export function dateTime(v) { formats(); const d = toDate(v); return d ? dateTimeFmt.format(d) : DASH; }

/** Seconds since ``v`` (ISO time), or null. */
export function ageS(v, now = Date.now()) { const d = toDate(v); return d ? Math.max(0, (now - d.getTime()) / 1000) : null; }

/** "12 s", "5 min", "3 h", "2 d" style compact age with the catalogue's units. */
export function ago(v, t, now = Date.now()) {
  const s = ageS(v, now);
  if (s === null) return DASH;
  if (s < 60) return t("unit.ago_s", { n: Math.round(s) });
  if (s < 3600) return t("unit.ago_min", { n: Math.round(s / 60) });
  if (s < 86400) return t("unit.ago_h", { n: Math.round(s / 3600) });
  return t("unit.ago_d", { n: Math.round(s / 86400) });
}

/** Local time as a Plotly-friendly string (Plotly has no time zones: give it wall-clock time). */
export function plotTime(v) {
  const d = toDate(v);
  if (!d) return null;
  const local = new Date(d.getTime() + 7 * 3600 * 1000);
  return local.toISOString().slice(0, 19).replace("T", " ");
}

/** A large number in compact form ("182,3 N" / "182.3K"). */
export function compact(v) {
  if (!isNum(v)) return DASH;
  return new Intl.NumberFormat(locale(), { notation: "compact", maximumFractionDigits: 1 }).format(v);
}
