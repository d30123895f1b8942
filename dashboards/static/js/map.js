// The city without tiles: an SVG schematic from zone centres and device positions, equirectangular
// projection fitted to the fleet's bounding box; slippy-map tiles underneath only when configured.
const SVG = "http://www.w3.org/2000/svg";

// The Saigon River, roughly (lat, lon), north to south: enough to orient a viewer, not a survey.
const RIVER = [
  [10.905, 106.700], [10.885, 106.708], [10.862, 106.716], [10.845, 106.712], [10.829, 106.707],
  [10.822, 106.716], [10.826, 106.731], [10.817, 106.742], [10.804, 106.738], [10.797, 106.727],
  [10.788, 106.721], [10.777, 106.713], [10.768, 106.709], [10.760, 106.714], [10.755, 106.728],
  [10.760, 106.745], [10.772, 106.760], [10.762, 106.776], [10.740, 106.772], [10.718, 106.760],
  [10.700, 106.752], [10.680, 106.757], [10.660, 106.770],
];

const OFFLINE = new Set(["offline", "stale", "unknown"]);

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** Set an attribute only when its value changes: an unchanged write still re-styles the node. */
function setChanged(node, name, value) {
  const text = String(value);
  if (node.getAttribute(name) !== text) node.setAttribute(name, text);
}

/** The visual state of a device: a CSS class that sets colour and a shape chosen by kind and state. */
export function markerState(d) {
  if (OFFLINE.has(d.status) || !d.status) return d.status === "unknown" ? "unknown" : "offline";
  if (d.kind === "flood") return d.level ? `lvl-${d.level}` : "nodata";
  if (d.kind === "traffic") return d.congestion === null || d.congestion === undefined ? "nodata" : `cg-${d.congestion}`;
  if (d.kind === "camera") return d.incident ? "incident" : "ok";
  return "ok";
}

export class CityMap {
  /** ``svg``: the <svg> to draw in; ``tileUrl``: "" for none, else a {z}/{x}/{y} template. */
  constructor(svg, { tileUrl = "", onSelect = () => {}, onHover = () => {} } = {}) {
    this.svg = svg;
    this.tileUrl = tileUrl;
    this.onSelect = onSelect;
    this.onHover = onHover;
    this.devices = new Map(); // device_id -> {data, node}
    this.zones = [];
    this.bbox = null;
    this.layers = {
      tiles: el("g", { class: "tiles" }, svg),
      river: el("g", { class: "river" }, svg),
      zones: el("g", { class: "zones" }, svg),
      alerts: el("g", { class: "alert-rings" }, svg),
      devices: el("g", { class: "devices" }, svg),
      air: el("g", { class: "air-layer" }, svg),
      labels: el("g", { class: "labels" }, svg),
      incidents: el("g", { class: "incident-layer" }, svg),
    };
    // One listener each for the whole map, however many markers and updates.
    svg.addEventListener("click", (ev) => {
      const g = ev.target.closest("[data-device]");
      const zone = ev.target.closest("[data-zone]");
      if (g) this.onSelect(this.devices.get(g.dataset.device)?.data, ev);
      else if (zone) location.href = `/zones/${encodeURIComponent(zone.dataset.zone)}`;
      else this.onSelect(null, ev);
    });
    svg.addEventListener("mouseover", (ev) => {
      const g = ev.target.closest("[data-device]");
      this.onHover(g ? this.devices.get(g.dataset.device)?.data : null, ev);
    });
    svg.addEventListener("mouseleave", (ev) => this.onHover(null, ev));
    svg.addEventListener("keydown", (ev) => {
      const g = ev.target.closest("[data-device]");
      if (g && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); this.onSelect(this.devices.get(g.dataset.device)?.data, ev); }
    });
  }

  /** Set the zones (with centres) once: they fix the projection together with the devices. */
  setZones(zones) {
    this.zones = zones.filter((z) => Number.isFinite(z.lat) && Number.isFinite(z.lon));
    this.fit();
  }

  fit() {
    const pts = [...this.zones.map((z) => [z.lat, z.lon])];
    for (const { data } of this.devices.values()) if (Number.isFinite(data.lat)) pts.push([data.lat, data.lon]);
    if (!pts.length) return false;
    let [s, w, n, e] = [90, 180, -90, -180];
    for (const [la, lo] of pts) { s = Math.min(s, la); n = Math.max(n, la); w = Math.min(w, lo); e = Math.max(e, lo); }
    const bbox = [s, w, n, e].join(",");
    if (bbox === this.bboxKey) return false;
    this.bboxKey = bbox;
    const lat0 = ((s + n) / 2) * Math.PI / 180;
    this.k = Math.cos(lat0);
    const padX = Math.max(0.004, (e - w) * 0.06);
    const padY = Math.max(0.004, (n - s) * 0.06);
    this.bbox = { s: s - padY, w: w - padX, n: n + padY, e: e + padX };
    // Map units: 1000 per degree of latitude; longitude shrunk by cos(latitude).
    const width = (this.bbox.e - this.bbox.w) * this.k * 1000;
    const height = (this.bbox.n - this.bbox.s) * 1000;
    this.svg.setAttribute("viewBox", `0 0 ${width.toFixed(2)} ${height.toFixed(2)}`);
    this.svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    this.unit = Math.max(width, height) / 100; // marker size scales with the drawing
    this.drawBase();
    for (const entry of this.devices.values()) this.place(entry);
    this.layers.air.replaceChildren();
    if (this.lastAir) this.setAir(...this.lastAir);
    this.layers.alerts.replaceChildren();
    if (this.lastAlerts) this.setAlerts(this.lastAlerts);
    this.layers.incidents.replaceChildren();
    if (this.lastIncidents) this.setIncidents(...this.lastIncidents);
    return true;
  }

  project(lat, lon) {
    return [(lon - this.bbox.w) * this.k * 1000, (this.bbox.n - lat) * 1000];
  }

  drawBase() {
    const u = this.unit;
    this.layers.river.replaceChildren();
    const d = RIVER.map(([la, lo], i) => `${i ? "L" : "M"}${this.project(la, lo).map((v) => v.toFixed(1)).join(",")}`).join("");
    el("path", { d, class: "river-line", "stroke-width": (u * 1.1).toFixed(2) }, this.layers.river);
    this.layers.zones.replaceChildren();
    this.layers.labels.replaceChildren();
    // Priority zones first: they get the best label positions.
    const zones = [...this.zones].sort((a, b) => Number(Boolean(b.priority)) - Number(Boolean(a.priority)));
    // Every zone's centre dot is an obstacle for every label, so no label covers another zone's point.
    const placed = zones.map((z) => { const [x, y] = this.project(z.lat, z.lon); return [x - u, y - u, 2 * u, 2 * u]; });
    for (const z of zones) {
      const [x, y] = this.project(z.lat, z.lon);
      const g = el("g", { class: `zone${z.priority ? " priority" : ""}`, "data-zone": z.zone_id }, this.layers.zones);
      el("circle", { cx: x, cy: y, r: (u * 4.5).toFixed(2), class: "zone-halo" }, g);
      el("circle", { cx: x, cy: y, r: (u * 0.5).toFixed(2), class: "zone-dot" }, g);
      // Labels live in the top layer so markers never hide them; they still belong to the zone's link.
      const text = el("text", { x, y, class: `zone-label${z.priority ? " priority" : ""}`, "data-zone": z.zone_id,
        "font-size": (u * (z.priority ? 2.4 : 2.0)).toFixed(2) }, this.layers.labels);
      text.textContent = z.name.replace(/\s*\(.*\)\s*$/, "");
      this.placeLabel(text, x, y, placed);
      z.node = g;
    }
    this.drawTiles();
  }

  /** Put a label above, below, right or left of its point, whichever overlaps fewer labels already placed. */
  placeLabel(text, x, y, placed) {
    const u = this.unit;
    const h = parseFloat(text.getAttribute("font-size"));
    const w = text.getComputedTextLength?.() || h * text.textContent.length * 0.55;
    const d = u * 1.4;
    const options = [
      { x, y: y - d, anchor: "middle", box: [x - w / 2, y - d - h, w, h] },
      { x, y: y + d + h * 0.8, anchor: "middle", box: [x - w / 2, y + d, w, h] },
      { x: x + d, y: y + h * 0.35, anchor: "start", box: [x + d, y - h * 0.65, w, h] },
      { x: x - d, y: y + h * 0.35, anchor: "end", box: [x - d - w, y - h * 0.65, w, h] },
      { x: x + d * 0.7, y: y - d * 0.7, anchor: "start", box: [x + d * 0.7, y - d * 0.7 - h, w, h] },
      { x: x - d * 0.7, y: y - d * 0.7, anchor: "end", box: [x - d * 0.7 - w, y - d * 0.7 - h, w, h] },
      { x: x + d * 0.7, y: y + d * 0.7 + h * 0.8, anchor: "start", box: [x + d * 0.7, y + d * 0.7, w, h] },
      { x: x - d * 0.7, y: y + d * 0.7 + h * 0.8, anchor: "end", box: [x - d * 0.7 - w, y + d * 0.7, w, h] },
    ];
    const overlap = ([ax, ay, aw, ah]) => placed.reduce((n, [bx, by, bw, bh]) => n
      + Math.max(0, Math.min(ax + aw, bx + bw) - Math.max(ax, bx)) * Math.max(0, Math.min(ay + ah, by + bh) - Math.max(ay, by)), 0);
    const best = options.reduce((a, b) => (overlap(b.box) < overlap(a.box) ? b : a));
    text.setAttribute("x", best.x.toFixed(2));
    text.setAttribute("y", best.y.toFixed(2));
    text.setAttribute("text-anchor", best.anchor);
    placed.push(best.box);
  }

  /** Colour a zone's halo by its summary state (ok / warning / critical). */
  setZoneStates(zoneSummaries) {
    const byId = new Map(zoneSummaries.map((z) => [z.zone_id, z.state]));
    for (const z of this.zones) if (z.node) z.node.dataset.state = byId.get(z.zone_id) || "ok";
  }

  drawTiles() {
    this.layers.tiles.replaceChildren();
    if (!this.tileUrl || !this.bbox) return;
    const box = this.svg.getBoundingClientRect();
    const widthPx = Math.max(256, box.width || 800);
    const lonSpan = this.bbox.e - this.bbox.w;
    const z = Math.max(1, Math.min(18, Math.floor(Math.log2((widthPx * 360) / (256 * lonSpan)))));
    const n = 2 ** z;
    const tx = (lon) => ((lon + 180) / 360) * n;
    const ty = (lat) => { const r = lat * Math.PI / 180; return ((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n; };
    const lon = (x) => (x / n) * 360 - 180;
    const lat = (y) => Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180 / Math.PI;
    for (let x = Math.floor(tx(this.bbox.w)); x <= Math.floor(tx(this.bbox.e)); x += 1) {
      for (let y = Math.floor(ty(this.bbox.n)); y <= Math.floor(ty(this.bbox.s)); y += 1) {
        const [x0, y0] = this.project(lat(y), lon(x));
        const [x1, y1] = this.project(lat(y + 1), lon(x + 1));
        const href = this.tileUrl.replace("{z}", z).replace("{x}", x).replace("{y}", y).replace("{s}", "abc"[(x + y) % 3]);
        el("image", { href, x: x0, y: y0, width: x1 - x0, height: y1 - y0, preserveAspectRatio: "none" }, this.layers.tiles);
      }
    }
  }

  /** Add or update devices of one kind (reusing their SVG nodes). */
  setDevices(devices) {
    let added = false;
    for (const d of devices) {
      if (!Number.isFinite(d.lat) || !Number.isFinite(d.lon)) continue;
      let entry = this.devices.get(d.device_id);
      if (!entry) {
        entry = { data: d, node: null };
        this.devices.set(d.device_id, entry);
        added = true;
      }
      entry.data = d;
    }
    if (added && this.fit()) return; // fit() placed everything
    for (const d of devices) {
      const entry = this.devices.get(d.device_id);
      if (entry) this.place(entry);
    }
  }

  place(entry) {
    if (!this.bbox) return;
    const d = entry.data;
    const u = this.unit;
    if (!entry.node) {
      const g = el("g", { "data-device": d.device_id, class: `dev kind-${d.kind}`, tabindex: "0" });
      const r = u * 1.25;
      let shape;
      if (d.kind === "traffic") shape = el("rect", { x: -r, y: -r, width: 2 * r, height: 2 * r, rx: r * 0.2 }, g);
      else if (d.kind === "camera") shape = el("path", { d: `M0,${-r * 1.25}L${r * 1.15},${r * 0.8}L${-r * 1.15},${r * 0.8}Z` }, g);
      else shape = el("circle", { r: r * 1.1 }, g);
      shape.setAttribute("class", "shape");
      shape.setAttribute("stroke-width", (u * 0.3).toFixed(2));
      // The offline mark: a cross over the shape, drawn always and shown by CSS for offline/stale.
      el("path", { class: "cross", d: `M${-r},${-r}L${r},${r}M${r},${-r}L${-r},${r}`, "stroke-width": (u * 0.35).toFixed(2) }, g);
      entry.node = g;
      this.layers.devices.appendChild(g);
    }
    const [x, y] = this.project(d.lat, d.lon);
    const tr = `translate(${x.toFixed(2)},${y.toFixed(2)})`;
    if (entry.node.getAttribute("transform") !== tr) entry.node.setAttribute("transform", tr);
    const state = markerState(d);
    if (entry.node.dataset.state !== state) entry.node.dataset.state = state;
  }

  /** Rings around devices with an active alert (reusing nodes). */
  setAlerts(alerts) {
    this.lastAlerts = alerts;
    const wanted = new Map();
    for (const a of alerts) {
      const entry = this.devices.get(a.device_id);
      if (!entry || !this.bbox) continue;
      const sev = wanted.get(a.device_id) === "critical" ? "critical" : a.severity;
      wanted.set(a.device_id, sev);
    }
    const layer = this.layers.alerts;
    const existing = new Map([...layer.children].map((n) => [n.dataset.device, n]));
    for (const [id, node] of existing) if (!wanted.has(id)) node.remove();
    for (const [id, severity] of wanted) {
      let node = existing.get(id);
      if (!node) {
        const [x, y] = this.project(this.devices.get(id).data.lat, this.devices.get(id).data.lon);
        node = el("circle", { cx: x, cy: y, r: this.unit * 3, "data-device": id, "stroke-width": this.unit * 0.45 }, layer);
      }
      setChanged(node, "class", `ring ${severity}`);
    }
  }

  /** The air layer: each sensor a disc in its AQI band's colour with its index, a suspect one dashed and hollow.
   * ``paint(node, bandKey)`` colours a node (the caller knows the server's bands). Nodes are reused. */
  setAir(points, paint) {
    this.lastAir = [points, paint];
    if (!this.bbox) return;
    const layer = this.layers.air;
    const existing = new Map([...layer.children].map((n) => [n.dataset.device, n]));
    const wanted = new Set();
    const r = this.unit * 1.9;
    for (const p of points) {
      if (!Number.isFinite(p.lat) || !Number.isFinite(p.lon)) continue;
      wanted.add(p.device_id);
      let g = existing.get(p.device_id);
      if (!g) {
        g = el("g", { "data-device": p.device_id, class: "air-pt", tabindex: "0" }, layer);
        el("circle", { r: r.toFixed(2), class: "air-disc", "stroke-width": (this.unit * 0.3).toFixed(2) }, g);
        el("text", { class: "air-num", "text-anchor": "middle", dy: "0.35em", "font-size": (r * 0.95).toFixed(2) }, g);
      }
      // Only what changed is written: each write re-styles the node, and the air channel redraws often.
      const [x, y] = this.project(p.lat, p.lon);
      setChanged(g, "transform", `translate(${x.toFixed(2)},${y.toFixed(2)})`);
      setChanged(g, "data-suspect", p.suspect ? "1" : "0");
      setChanged(g, "data-status", p.status || "unknown");
      const band = p.suspect ? "" : p.band || "";
      if (g.dataset.band !== band || !g.hasAttribute("data-band")) {
        const disc = g.firstElementChild;
        paint(disc, band || null);
        g.lastElementChild.style.fill = disc.style.color;
        g.dataset.band = band;
      }
      const text = Number.isFinite(p.aqi) ? String(p.aqi) : "–";
      if (g.lastElementChild.textContent !== text) g.lastElementChild.textContent = text;
    }
    for (const [id, node] of existing) if (!wanted.has(id)) node.remove();
  }

  /** Open incidents as large badges on top of everything: the shape says the type (``shapeOf(type)``: a path of
   * radius 1), the colour the severity, a pulse an escalation; the number is the incident's. Nodes are reused. */
  setIncidents(incidents, shapeOf, label) {
    this.lastIncidents = [incidents, shapeOf, label];
    if (!this.bbox) return;
    const layer = this.layers.incidents;
    const existing = new Map([...layer.children].map((n) => [n.dataset.incident, n]));
    const wanted = new Set();
    const r = this.unit * 3.2;
    for (const i of incidents) {
      if (!Number.isFinite(i.lat) || !Number.isFinite(i.lon)) continue;
      const id = String(i.id);
      wanted.add(id);
      let g = existing.get(id);
      if (!g) {
        g = el("g", { "data-incident": id, class: "incident-badge" }, layer);
        el("path", { class: "inc-shape", "stroke-width": (this.unit * 0.5).toFixed(2) }, g);
        el("text", { class: "inc-num", "text-anchor": "middle", dy: "0.35em", "font-size": (r * 0.8).toFixed(2) }, g);
        el("title", {}, g);
      }
      const [x, y] = this.project(i.lat, i.lon);
      setChanged(g, "transform", `translate(${x.toFixed(2)},${y.toFixed(2)})`);
      setChanged(g.firstElementChild, "d", shapeOf(i.type, r));
      setChanged(g, "data-type", i.type);
      setChanged(g, "data-severity", i.severity);
      setChanged(g, "data-escalated", i.escalated ? "1" : "0");
      if (g.children[1].textContent !== id) g.children[1].textContent = id;
      const title = label(i);
      if (g.lastElementChild.textContent !== title) g.lastElementChild.textContent = title;
    }
    for (const [id, node] of existing) if (!wanted.has(id)) node.remove();
  }

  /** Screen position (relative to the svg box) of a device, for a details card. */
  screenPos(deviceId) {
    const entry = this.devices.get(deviceId);
    if (!entry?.node) return null;
    const r = entry.node.getBoundingClientRect();
    const box = this.svg.getBoundingClientRect();
    return { x: r.left + r.width / 2 - box.left, y: r.top + r.height / 2 - box.top };
  }
}

/** Distance in km between two lat/lon points (equirectangular, fine at city scale). */
export function distanceKm(a, b) {
  const k = Math.cos(((a.lat + b.lat) / 2) * Math.PI / 180);
  const dx = (a.lon - b.lon) * k * 111.32;
  const dy = (a.lat - b.lat) * 110.57;
  return Math.hypot(dx, dy);
}
