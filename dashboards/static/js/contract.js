// The server's contract, as every page's configuration carries it (dashboards/pages.py page_meta: the live
// channels' ``meta`` plus each kind's metrics): channel names, list keys, thresholds and bands, metric units.
// Nothing here is a rule of the browser's own; every value comes from the server.

/** The page's configuration as the server embedded it (who is looking, heartbeat, tiles, subject, ``meta``). */
export function pageConfig() {
  const node = document.getElementById("ioc-config");
  try { return JSON.parse(node.textContent); } catch { return {}; }
}

export const meta = pageConfig().meta || {};

/** A live channel's name as the server spells it: ``channel("alerts")``, ``channel("kind", "flood")``. */
export function channel(family, id) {
  const name = meta.channels?.[family];
  if (!name) throw new Error(`the server names no channel "${family}"`);
  return id === undefined ? name : name.replace("{}", id);
}

/** The device kinds the server knows, in its order. */
export function kinds() { return Object.keys(meta.kinds || {}); }

/** The metrics of ``kind``: metric name -> canonical unit. */
export function metrics(kind) { return meta.kinds?.[kind] || {}; }

/** The kinds file's label of a kind or a metric (``family`` "kinds" or "metrics") in ``language``, else null. */
export function serverLabel(family, name, language) {
  const labels = meta.labels?.[family]?.[name];
  return labels ? labels[language] || labels.en || null : null;
}

/** How long (s) a camera event counts as recent: the window of the incident counts. */
export function incidentWindowS() { return meta.thresholds?.cameras?.incident_window_s ?? 0; }

/** True when a camera event is an incident (any severity but the server's quiet one). */
export function isIncident(event) {
  return Boolean(event) && event.severity !== meta.thresholds?.cameras?.quiet_severity;
}

/** The state a congestion band reads as: the first band ok, the last (jammed) critical, those between warning. */
export function congestionState(band) {
  const last = meta.thresholds?.traffic?.congestion_ratios?.length ?? 0;
  if (typeof band !== "number") return "none";
  return band === 0 ? "ok" : band >= last ? "critical" : "warning";
}
