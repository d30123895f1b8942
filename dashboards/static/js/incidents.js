// Words for incidents, shared by the console and the handover report: states, severities, timeline entries.
import { t, lang } from "./i18n.js";
import * as fmt from "./format.js";

/** A {vi, en} text in the page's language. */
export const txt = (pair) => (pair ? pair[lang()] || pair.vi || pair.en || "" : "");
export const stateLabel = (s) => t(`incident_state.${s}`);
export const severityLabel = (s) => t(`severity.${s}`);

/** Seconds as the handover and the monthly figures say them (s, min or h). */
export function duration(seconds) {
  if (!fmt.isNum(seconds)) return fmt.DASH;
  if (seconds < 60) return t("handover.seconds", { n: fmt.num(seconds) });
  return seconds < 3600 ? t("handover.minutes", { n: fmt.num(seconds / 60, 1) }) : t("handover.hours", { n: fmt.num(seconds / 3600, 1) });
}

/** One timeline entry (``kind`` and its fields, as the API sends them) in words. */
export function describe(e) {
  switch (e.kind) {
    case "created": return t("tl.created", { severity: severityLabel(e.severity) });
    case "alert": return t("tl.alert", { title: e.title || "" });
    case "state": return t("tl.state", { from: stateLabel(e.from), to: stateLabel(e.to) });
    case "severity": return t("tl.severity", { from: severityLabel(e.from), to: severityLabel(e.to) });
    case "assign": return assigned(e);
    case "step": return t("tl.step", { step: txt(e.text) });
    case "note": return e.via === "field" ? t("tl.field_note", { text: e.text || "" }) : e.text || "";
    case "photo": return t("tl.photo");
    case "pin": return t("tl.pin", { camera: e.device_name || e.device_id || "" });
    case "field_link": return fieldLinkChange(e);
    case "escalation": return t("tl.escalation", { limit: t(`limit.${e.limit}`), minutes: fmt.num(e.minutes, e.minutes < 1 ? 2 : 0) });
    case "alert_history": return t("tl.alert_history", { title: e.title || "", state: t(`alert_state.${e.to}`) });
    default: return e.kind;
  }
}

/** An assignment: to a field team, taken by oneself, or given by someone else ("Assigned to X by Y"). */
function assigned(e) {
  if (e.team) return t("tl.assign_team", { team: e.team });
  return e.actor && e.actor !== e.to ? t("tl.assign_by", { who: e.to, by: e.actor }) : t("tl.assign", { who: e.to });
}

/** A field link made or revoked (by an operator, or because the incident moved on: handed over, closed). */
function fieldLinkChange(e) {
  if (e.action !== "revoked") return t("tl.field_link_created", { team: e.team ? ` (${e.team})` : "" });
  return e.reason ? t(`tl.field_link_ended.${e.reason}`, { id: e.link_id, team: e.team || "" }) : t("tl.field_link_revoked", { id: e.link_id });
}
