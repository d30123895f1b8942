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

// ---------------------------------------------------------------- air quality (VN_AQI)
// The scale, its colours, labels and advice all come from the server (meta.thresholds.air, ioc/aqi.py).

/** The VN_AQI scale: ``{index, bands: [{key, low, high, colour, label, health, advice}], pollutants}``. */
export function airScale() { return meta.thresholds?.air || { bands: [], pollutants: [] }; }

/** The band object of a band key (null for none). */
export function airBand(key) { return airScale().bands.find((b) => b.key === key) || null; }

/** A text of the server's in the page's language: ``{vi, en}`` -> string. */
export function localised(text, lang) { return text?.[lang] ?? text?.en ?? ""; }

/** A pollutant's display name (PM2.5, NO₂...) from its key. */
export function pollutantName(key) { return airScale().pollutants.find((p) => p.key === key)?.name || key || ""; }

/** The metric a pollutant is read from (pm25 -> pm25_ugm3). */
export function pollutantMetric(key) { return airScale().pollutants.find((p) => p.key === key)?.metric || key; }
