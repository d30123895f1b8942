// The console's nearby devices: cameras with their latest snapshot (and a Pin button), flood sensors and traffic
// detectors with their reading and forecast, nearest first, as GET /api/v1/incidents/{id}/nearby sends them.
import { t } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, enc } from "./api.js";
import { $, setText, syncList, fromHTML, kindLabel } from "./common.js";

/** Show incident ``id``'s nearby devices unless ``stillOpen()`` says the operator moved on; ``pin(deviceId)``
 * pins a camera's snapshot, offered when ``canAct``. */
export async function loadNearby(id, { stillOpen, canAct, pin }) {
  const data = await getJSON(`/api/v1/incidents/${enc(id)}/nearby`);
  if (!stillOpen()) return;
  setText($("radius"), t("console.radius", { m: fmt.num(data.radius_m) }));
  const cams = data.items.filter((d) => d.kind === "camera");
  const others = data.items.filter((d) => d.kind !== "camera");
  const where = (d) => t("console.where", { m: fmt.num(d.distance_m), dir: t(`dir.${d.direction}`) });
  syncList($("cams"), cams, {
    key: (d) => d.device_id,
    create: () => {
      const node = fromHTML('<figure class="c-cam"><img alt="" loading="lazy"><div class="c-cam-none"></div><figcaption><span class="c-cam-name"></span><span class="c-cam-where"></span><button type="button" class="btn c-pin"></button></figcaption></figure>');
      node.querySelector(".c-pin").addEventListener("click", () => pin(node.dataset.key));
      return node;
    },
    fill: (node, d) => {
      const img = node.querySelector("img");
      const none = node.querySelector(".c-cam-none");
      img.hidden = !d.snapshot_at;
      none.hidden = Boolean(d.snapshot_at);
      setText(none, t("cameras.no_image"));
      if (d.snapshot_at) {
        const src = `/api/v1/devices/${enc(d.device_id)}/snapshot?at=${enc(d.snapshot_at)}`;
        if (img.getAttribute("src") !== src) img.src = src;
        img.alt = d.name;
      }
      setText(node.querySelector(".c-cam-name"), d.name);
      setText(node.querySelector(".c-cam-where"), where(d));
      const pin = node.querySelector(".c-pin");
      pin.hidden = !canAct || !d.snapshot_at;
      setText(pin, t("console.pin"));
      pin.title = t("console.pin_label");
    },
  });
  syncList($("sensors"), others, {
    key: (d) => d.device_id,
    create: () => fromHTML('<li class="c-sensor"><span class="c-sensor-kind"></span><a class="c-sensor-name"></a><span class="c-sensor-value"></span><span class="c-sensor-forecast"></span><span class="c-sensor-where"></span></li>'),
    fill: (node, d) => {
      setText(node.querySelector(".c-sensor-kind"), kindLabel(d.kind));
      const link = node.querySelector(".c-sensor-name");
      link.href = `/devices/${enc(d.device_id)}`;
      setText(link, d.name);
      const metric = d.kind === "flood" ? "water_level_cm" : "avg_speed_kmh";
      const value = d.latest?.[metric]?.value;
      const unit = t(d.kind === "flood" ? "unit.cm" : "unit.kmh");
      setText(node.querySelector(".c-sensor-value"), fmt.isNum(value) ? `${fmt.num(value, 1)} ${unit}` : fmt.DASH);
      const ahead = (d.forecast?.[metric] || []).filter((f) => f.horizon_min <= 60).pop();
      setText(node.querySelector(".c-sensor-forecast"), ahead ? t("console.forecast", { h: ahead.horizon_min, v: `${fmt.num(ahead.value, 1)} ${unit}` }) : "");
      setText(node.querySelector(".c-sensor-where"), where(d));
    },
  });
  if (!data.items.length) setText($("radius"), t(data.located ? "console.nothing_near" : "console.no_location", { m: fmt.num(data.radius_m) }));
}
