// The air-quality section of the device and zone pages: the VN_AQI now (band colour, label, dominant pollutant,
// the Decision's advice) and the hourly index of the last 24 hours, bars in their bands' colours.
// Everything comes from /api/v1/air/devices/{id} or /api/v1/air/zones/{id} and the server's scale (meta).
import { t, lang, applyI18n } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, enc } from "./api.js";
import { airBand, airScale, localised, pollutantName } from "./contract.js";
import { COLORS, baseLayout, plotText, react, rem } from "./charts.js";
import { $, setText, fromHTML } from "./common.js";
import { paintBand } from "./aqi.js";

const HOURS = 24;
const SECTION = `<section class="section air-section" id="air-section">
  <h2 data-i18n="air.title"></h2>
  <div class="air-now">
    <span class="air-chip" id="air-now-aqi">—</span>
    <div class="air-now-text"><div class="air-now-band" id="air-now-band"></div><div class="air-now-sub" id="air-now-sub"></div></div>
  </div>
  <p class="air-advice"><b data-i18n="air.advice_general"></b> <span id="air-general"></span></p>
  <p class="air-advice"><b data-i18n="air.advice_sensitive"></b> <span id="air-sensitive"></span></p>
  <div class="chart-plot" id="air-history"></div>
  <div class="chart-note" id="air-history-note"></div>
</section>`;

/** Fill the page's empty #air-section placeholder with the section (once) and show it. */
function reveal() {
  const placeholder = $("air-section");
  if (placeholder.hidden) {
    const section = fromHTML(SECTION);
    applyI18n(section);
    placeholder.replaceWith(section);
  }
}

function bandOfIndex(aqi) {
  return fmt.isNum(aqi) ? airScale().bands.find((b) => aqi <= b.high) || airScale().bands.at(-1) : null;
}

function renderNow(aqi, bandKey, sub) {
  const band = airBand(bandKey);
  paintBand($("air-now-aqi"), bandKey);
  setText($("air-now-aqi"), fmt.num(aqi));
  setText($("air-now-band"), band ? `${localised(band.label, lang())} · ${localised(band.health, lang())}` : t("air.no_data"));
  setText($("air-now-sub"), sub);
  setText($("air-general"), band ? localised(band.advice.general, lang()) : fmt.DASH);
  setText($("air-sensitive"), band ? localised(band.advice.sensitive, lang()) : fmt.DASH);
}

function drawHistory(history) {
  const r = rem();
  const x = history.map((h) => fmt.plotTime(h.time));
  const y = history.map((h) => h.aqi ?? 0);
  const colours = history.map((h) => bandOfIndex(h.aqi)?.colour || COLORS.offline);
  const hover = history.map((h) => `${fmt.hm(h.time)} · ${plotText(fmt.num(h.aqi))} · ${plotText(pollutantName(h.dominant))}`);
  const layout = baseLayout({
    margin: { l: r * 3.2, r: r * 1, t: r * 0.8, b: r * 2.4 },
    bargap: 0.15,
    xaxis: { type: "date", gridcolor: COLORS.grid, tickformat: "%H:%M<br>%d/%m" },
    yaxis: { gridcolor: COLORS.grid, zeroline: false, rangemode: "tozero", title: { text: airScale().index || "" } },
  });
  react($("air-history"), [{ type: "bar", x, y, marker: { color: colours }, hovertext: hover, hoverinfo: "text" }], layout);
  setText($("air-history-note"), history.some((h) => fmt.isNum(h.aqi)) ? t("air.history_note", { n: HOURS }) : t("drill.no_data"));
}

function subIndices(now) {
  const parts = Object.entries(now.sub || {}).map(([p, v]) => `${pollutantName(p)} ${fmt.num(v)}`);
  const us = now.us?.aqi;
  if (fmt.isNum(us)) parts.push(t("air.us_epa", { aqi: fmt.num(us) }));
  return parts.join(" · ");
}

/** The section for an air sensor (hidden for other kinds). */
export async function showDevice(deviceId) {
  const body = await getJSON(`/api/v1/air/devices/${enc(deviceId)}?hours=${HOURS}`);
  reveal();
  renderNow(body.now.aqi, body.now.band, subIndices(body.now));
  drawHistory(body.history || []);
}

/** The section for a zone with air sensors (hidden when it has none). */
export async function showZone(zoneId) {
  const body = await getJSON(`/api/v1/air/zones/${enc(zoneId)}?hours=${HOURS}`);
  if (!body.points?.length) return;
  reveal();
  const z = body.zone || {};
  const sub = t("air.zone_sub", { pollutant: pollutantName(z.dominant) || fmt.DASH, device: z.device_id || fmt.DASH, n: fmt.num(z.sensors) });
  renderNow(z.aqi ?? null, z.band, sub);
  drawHistory(body.history || []);
}
