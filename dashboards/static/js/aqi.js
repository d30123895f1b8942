// Painting in the VN_AQI bands' colours (the server's: meta.thresholds.air), shared by the wall, the summary and
// the drill-down pages.
import { airBand } from "./contract.js";
import { setAttr } from "./common.js";

/** Black or white, whichever reads better on ``colour`` (#rrggbb): legibility, not a domain rule. */
export function inkOn(colour) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour || "");
  if (!m) return "";
  const [r, g, b] = m.slice(1).map((h) => parseInt(h, 16) / 255);
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 ? "#0b1117" : "#ffffff";
}

/** Paint an HTML ``node`` in a band's colour (background and readable text), or clear it (``key`` null). */
export function paintBand(node, key) {
  const band = airBand(key);
  node.style.background = band ? band.colour : "";
  node.style.color = band ? inkOn(band.colour) : "";
  setAttr(node, "data-band", key || "none");
}

/** Paint an SVG ``node`` (fill, and ``color`` for text drawn on it) in a band's colour, or clear it. */
export function paintFill(node, key) {
  const band = airBand(key);
  node.style.fill = band ? band.colour : "";
  node.style.color = band ? inkOn(band.colour) : "";
}
