// The device health panel: devices per kind and status, a chip per zone, and the processes `ioc up` reports failing.
import { t } from "../i18n.js";
import * as fmt from "../format.js";
import { getJSON, enc } from "../api.js";
import { $, setText, setAttr, shortZone, kindLabel } from "../common.js";

const STATUSES = ["online", "stale", "offline", "unknown"]; // the table's columns (wall.html)
const PROCESSES_EVERY_MS = 15000;

function count(state) {
  const counts = {};
  const zoneCounts = new Map();
  for (const kind of state.kinds) {
    counts[kind] = { online: 0, stale: 0, offline: 0, unknown: 0, total: 0 };
    for (const d of state.devices[kind] || []) {
      const st = STATUSES.includes(d.status) ? d.status : "unknown";
      counts[kind][st] += 1;
      counts[kind].total += 1;
      const z = zoneCounts.get(d.zone) || { online: 0, total: 0 };
      z.total += 1;
      if (st === "online") z.online += 1;
      zoneCounts.set(d.zone, z);
    }
  }
  // Fall back on the summary's counts until the kind channels have arrived.
  const byKind = state.summary?.devices?.by_kind || {};
  for (const kind of Object.keys(counts)) if (!counts[kind].total && byKind[kind]) Object.assign(counts[kind], byKind[kind]);
  return { counts, zoneCounts };
}

function renderTable(counts) {
  const body = $("health-body");
  if (!body.children.length) {
    for (const kind of Object.keys(counts)) {
      const tr = document.createElement("tr");
      tr.dataset.kind = kind;
      tr.innerHTML = `<th scope="row"><span class="kind-icon k-${kind}" aria-hidden="true"></span><span class="kind-name"></span></th>`
        + STATUSES.map((s) => `<td class="n-${s}"></td>`).join("");
      body.appendChild(tr);
    }
  }
  for (const tr of body.children) {
    const c = counts[tr.dataset.kind];
    setText(tr.querySelector(".kind-name"), kindLabel(tr.dataset.kind));
    for (const s of STATUSES) {
      const td = tr.querySelector(`.n-${s}`);
      setText(td, fmt.num(c[s] || 0));
      td.classList.toggle("nonzero", (c[s] || 0) > 0);
    }
  }
}

function renderChips(zones, zoneCounts) {
  const chips = $("zone-chips");
  // Three rows at most, however many zones the city has: more zones, more (narrower) columns.
  const cols = String(Math.max(5, Math.ceil(zones.length / 3)));
  if (chips.style.getPropertyValue("--zone-cols") !== cols) chips.style.setProperty("--zone-cols", cols);
  for (const z of zones) {
    let chip = chips.querySelector(`[data-zone="${z.zone_id}"]`);
    if (!chip) {
      chip = document.createElement("a");
      chip.className = "zone-chip";
      chip.dataset.zone = z.zone_id;
      chip.href = `/zones/${enc(z.zone_id)}`;
      chip.innerHTML = '<span class="zc-icon" aria-hidden="true"></span><span class="zc-name"></span><span class="zc-n"></span>';
      chips.appendChild(chip);
    }
    const c = zoneCounts.get(z.zone_id) || { online: 0, total: 0 };
    setText(chip.querySelector(".zc-name"), shortZone(z.name));
    setText(chip.querySelector(".zc-n"), `${fmt.num(c.online)}/${fmt.num(c.total)}`);
    setAttr(chip, "data-health", c.total === 0 ? "none" : c.online === c.total ? "ok" : c.online === 0 ? "down" : "partial");
  }
}

/** Draw the table (one row per kind the server knows) and the zone chips. */
export function render(state) {
  const { counts, zoneCounts } = count(state);
  renderTable(counts);
  renderChips(state.zones, zoneCounts);
}

// Processes `ioc up` reports as failing (GET /api/v1/health): one line under the table, hidden when none.
async function renderProcesses() {
  const processes = (await getJSON("/api/v1/health").catch(() => null))?.processes || {};
  const failing = Object.entries(processes).filter(([, p]) => p.state === "failing");
  $("health-processes").hidden = !failing.length;
  setText($("health-processes"), failing.map(([name, p]) => t("health.failing", { name, restarts: p.restarts, code: p.last_exit_code })).join(" · "));
}

/** Ask for the processes' health now and every 15 s. */
export function watchProcesses() {
  renderProcesses();
  setInterval(renderProcesses, PROCESSES_EVERY_MS);
}
