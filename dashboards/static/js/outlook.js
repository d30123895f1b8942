// The crossings a zone's forecast channel predicts (the server computes each device's warning and danger
// crossing: dashboards/outlooks.py), as the wall's "next 2 hours" panel and the tablet's areas list them.

/** The crossing that matters most for a device: danger before warning (null when none is predicted). */
function worst(d) {
  if (d.danger) return { level: "danger", ...d.danger };
  if (d.warning) return { level: "warning", ...d.warning };
  return null;
}

/** Every predicted crossing in ``views`` (zone -> forecast view), danger first, then soonest first. */
export function expected(views) {
  const out = [];
  for (const [zone, view] of views) {
    for (const d of view?.devices || []) {
      const x = worst(d);
      if (x) out.push({ ...x, d, zone, origin: view.origin });
    }
  }
  return out.sort((a, b) => (b.level === "danger") - (a.level === "danger") || a.eta_min - b.eta_min);
}
