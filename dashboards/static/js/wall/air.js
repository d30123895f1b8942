// The air-quality panel: the city's VN_AQI (its worst zone) in its band's colour, the worst sensors, the
// dominant pollutants and the scale. Values, bands, colours, labels and advice all come from the server.
import { t, lang } from "../i18n.js";
import * as fmt from "../format.js";
import { enc } from "../api.js";
import { airBand, airScale, localised, pollutantName } from "../contract.js";
import { $, setText, setAttr, shortZone, fromHTML } from "../common.js";
import { paintBand } from "../aqi.js";

const WORST_SHOWN = 4;
const ITEM = `<li><a class="aw-link"><span class="aw-aqi"></span><span class="aw-body"><span class="aw-name"></span>
  <span class="aw-meta"></span></span></a></li>`;

function renderCity(state) {
  const air = state.air || {};
  const city = air.city || {};
  const band = airBand(city.band);
  paintBand($("air-city"), city.band);
  setText($("air-city-value"), fmt.num(city.aqi));
  setText($("air-city-band"), band ? localised(band.label, lang()) : "");
  setText($("air-city-dominant"), city.dominant
    ? t("air.dominant_at", { pollutant: pollutantName(city.dominant), zone: shortZone(state.zoneNames.get(city.zone) || city.zone || "") })
    : "");
  setText($("air-note"), t("air.note", { index: airScale().index || "", n: fmt.num(city.sensors), suspects: fmt.num(air.suspects || 0) }));
}

function renderWorst(state) {
  const list = $("air-worst");
  const items = (state.air?.worst || []).slice(0, WORST_SHOWN);
  while (list.children.length < WORST_SHOWN) list.appendChild(fromHTML(ITEM));
  [...list.children].forEach((li, i) => {
    const w = items[i];
    li.hidden = !w;
    if (!w) return;
    li.dataset.device = w.device_id;
    setAttr(li.querySelector(".aw-link"), "href", `/devices/${enc(w.device_id)}`);
    const chip = li.querySelector(".aw-aqi");
    paintBand(chip, w.band);
    setText(chip, fmt.num(w.aqi));
    setText(li.querySelector(".aw-name"), w.name || w.device_id);
    const zone = shortZone(state.zoneNames.get(w.zone) || w.zone || "");
    const other = w.dominant && w.dominant !== "pm25" ? ` · ${pollutantName(w.dominant)}` : "";
    setText(li.querySelector(".aw-meta"), `${zone} · PM2.5 ${fmt.num(w.pm25, 1)} ${t("unit.ugm3")}${other}`);
  });
  $("air-empty").hidden = items.length > 0;
}

function renderDominant(state) {
  const parts = (state.air?.dominant || []).map((d) => t("air.dominant_count", { pollutant: pollutantName(d.pollutant), n: d.sensors }));
  setText($("air-dominant"), parts.length ? `${t("air.dominant")}: ${parts.join(" · ")}` : "");
}

function renderLegend() {
  const legend = $("air-legend");
  if (legend.children.length) return;
  for (const band of airScale().bands) {
    const li = document.createElement("li");
    paintBand(li, band.key);
    li.textContent = `${band.low} ${localised(band.label, lang())}`;
    li.title = `${band.low}–${band.high}`;
    legend.appendChild(li);
  }
}

/** Redraw the panel from ``state.air`` (the ``air`` channel). */
export function render(state) {
  renderLegend();
  renderCity(state);
  renderWorst(state);
  renderDominant(state);
}
