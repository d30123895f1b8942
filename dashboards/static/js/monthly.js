// Monthly statistics on the handover page: per zone and incident type for a chosen month (in the city's time),
// with the whole city as the last row, and the same figures as a CSV file.
import { t, lang } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, enc } from "./api.js";
import { $, setText } from "./common.js";
import { txt, duration } from "./incidents.js";

function cells(r) {
  return [fmt.num(r.alerts), fmt.num(r.incidents), fmt.num(r.resolved), duration(r.mean_acknowledge_s), duration(r.mean_resolve_s), fmt.num(r.breaches)];
}

function row(texts, key) {
  const tr = document.createElement("tr");
  if (key) tr.dataset.key = key;
  for (const text of texts) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.appendChild(td);
  }
  return tr;
}

async function show(month) {
  const data = await getJSON(`/api/v1/statistics/monthly?month=${enc(month)}`);
  setText($("monthly-range"), t("monthly.range", { from: fmt.dateTime(data.from), to: fmt.dateTime(data.to) }));
  const body = $("monthly");
  body.replaceChildren(...data.rows.map((r) => row([
    (lang() === "en" && r.zone_name_en) || r.zone_name || r.zone || fmt.DASH,
    r.type ? txt(r.type_name) || r.type : t("monthly.no_type"),
    ...cells(r),
  ], `${r.zone || ""}|${r.type || ""}`)));
  if (!data.rows.length) body.replaceChildren(row([t("handover.none")]));
  $("monthly-total").replaceChildren(row([t("monthly.city"), "", ...cells(data.totals)], "total"));
  $("monthly-csv").href = `/api/v1/statistics/monthly.csv?month=${enc(month)}&lang=${enc(lang())}`;
  document.body.dataset.monthly = month;
}

/** Show ``month`` (YYYY-MM) and let the form choose another. */
export async function initMonthly(month) {
  $("month").value = month;
  $("monthly-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    show($("month").value);
  });
  await show(month);
}
