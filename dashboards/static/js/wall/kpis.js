// The header's key figures and the small counts in the panel heads, from the summary channel.
import { t } from "../i18n.js";
import * as fmt from "../format.js";
import { $, setText, setAttr, trend } from "../common.js";

function kpi(name, value, sub, level, subCls = "") {
  const box = document.querySelector(`.kpi[data-kpi="${name}"]`);
  if (!box) return;
  const v = box.querySelector(".v");
  setText(v, value);
  v.classList.toggle("long", value.length > 5);
  const subNode = box.querySelector(".kpi-sub");
  setText(subNode, sub);
  setAttr(subNode, "class", `kpi-sub ${subCls}`);
  setAttr(box, "data-level", level || "none");
}

/** Draw the KPIs (against yesterday) and the panel-head counts from ``state.summary``. */
export function render(state) {
  const s = state.summary || {};
  const y = s.yesterday || {};
  const al = s.alerts || {};
  const fl = s.flood || {};
  const tr = s.traffic || {};
  const dv = s.devices || {};
  kpi("alerts", fmt.num(al.open), t("kpi.critical_n", { n: fmt.num(al.critical) }),
    al.critical > 0 ? "critical" : al.open > 0 ? "warning" : "ok", al.critical > 0 ? "bad" : "");
  const maxName = state.byId.get(fl.max_device_id)?.name;
  const tl = trend(fl.max_level_cm, y.max_level_cm, 0, false);
  kpi("flood", fmt.num(fl.max_level_cm, 0), maxName || `${tl.arrow} ${tl.text}`,
    fl.points_danger > 0 ? "critical" : fl.points_warning > 0 ? "warning" : fmt.isNum(fl.max_level_cm) ? "ok" : "none");
  const tp = trend(fl.points_warning, y.points_warning, 0, false);
  kpi("points", fmt.num(fl.points_warning), t("kpi.danger_n", { n: fmt.num(fl.points_danger) }),
    fl.points_danger > 0 ? "critical" : fl.points_warning > 0 ? "warning" : "ok", fl.points_danger > 0 ? "bad" : tp.cls);
  const ts = trend(tr.mean_speed_kmh, y.mean_speed_kmh, 0, true);
  kpi("speed", fmt.num(tr.mean_speed_kmh, 0), `${ts.arrow} ${ts.text}`.trim(), tr.mean_speed_level || "none", ts.cls);
  const ti = trend(s.cameras?.incidents_1h, y.incidents_1h, 0, false);
  kpi("incidents", fmt.num(s.cameras?.incidents_1h), `${ti.arrow} ${ti.text}`.trim(),
    s.cameras?.incidents_1h > 0 ? "warning" : "ok", ti.cls);
  const down = (dv.offline || 0) + (dv.stale || 0);
  kpi("devices", fmt.isNum(dv.total) ? `${fmt.num(dv.online)}/${fmt.num(dv.total)}` : fmt.DASH,
    t("kpi.not_reporting_n", { n: fmt.num(down) }), down > 0 ? "warning" : "ok", down > 0 ? "bad" : "");

  setText($("flood-warning"), fmt.num(fl.points_warning));
  setText($("flood-danger"), fmt.num(fl.points_danger));
  setText($("flood-rain"), fmt.num(fl.avg_rain_mm_h, 1));
  setText($("traffic-flow"), `${fmt.num(tr.flow_veh_h)} ${t("unit.vehh")}`);
  setText($("traffic-congested"), fmt.num(tr.congested));
  setText($("alerts-critical"), fmt.num(al.critical));
  setText($("alerts-unack"), fmt.num(al.unacknowledged));
}
