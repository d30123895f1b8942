// The public open data page: datasets, API, bulk files and examples, from /open/datasets.json (no login).
import { initI18n, t, lang, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { $, setText } from "./common.js";

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function link(href, text) { return el("a", { href, textContent: text }); }

function size(bytes) {
  if (bytes >= 1048576) return `${fmt.num(bytes / 1048576, 1)} MB`;
  return `${fmt.num(Math.max(1, bytes / 1024), 0)} kB`;
}

function resolution(ds) {
  return ds.resolution === "hour"
    ? t("open.res_hour", { statistic: t(`open.stat.${ds.statistic}`) })
    : t("open.res_raw", { seconds: ds.interval_s });
}

function files(ds) {
  const days = [...new Set(ds.files.map((f) => f.day))].sort().reverse().slice(0, 3);
  if (!days.length) return el("p", { textContent: t("open.no_files") });
  return el("ul", {}, days.map((day) => el("li", {}, [
    `${day}: `,
    ...ds.files.filter((f) => f.day === day).flatMap((f, i) => [
      i ? " · " : "",
      link(`/open/bulk/${f.path}`, `${t(`open.format.${f.format}`)} (${size(f.bytes)}, ${t("open.rows", { n: fmt.num(f.rows) })})`),
    ]),
  ])));
}

function dataset(ds) {
  const name = ds.label[lang()] || ds.label.en || ds.kind;
  const metrics = ds.metrics.map((m) => `${m.id} (${m.unit})`).join(", ");
  const rows = [
    [t("open.metrics"), metrics],
    [t("open.resolution"), resolution(ds)],
    [t("open.frequency"), ds.resolution === "hour" ? t("open.freq_hourly") : t("open.freq_continuous")],
    [t("open.api"), link(ds.datastreams, t("open.datastreams"))],
  ];
  if (ds.hourly.length) rows.splice(2, 0, [t("open.hourly"), ds.hourly.map((s) => t(`open.stat.${s}`)).join(", ")]);
  const h = el("h3", { id: `h-dataset-${ds.kind}`, textContent: name });
  const list = el("dl", {}, rows.flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", {}, [v])]));
  return el("article", { className: "o-dataset", id: `dataset-${ds.kind}` }, [
    h, list, el("h4", { className: "visually-hidden", textContent: t("open.files") }), files(ds),
  ]);
}

function examples(info) {
  const base = location.origin;
  const ds = info.datasets[0];
  const stream = ds ? `${ds.kind}` : "flood";
  setText($("example-curl"), [
    `curl -s ${base}/sta/v1.1`,
    `curl -s -G ${base}/sta/v1.1/Datastreams --data-urlencode "\\$filter=properties/kind eq '${stream}'" \\`,
    `  --data-urlencode '$expand=Observations($top=1;$orderby=phenomenonTime desc)'`,
    `curl -s ${base}/open/bulk/manifest.json`,
    `curl -s -H 'X-API-Key: ioc_…' ${base}/sta/v1.1/Things`,
  ].join("\n"));
  setText($("example-python"), [
    "import requests",
    "",
    `url = "${base}/sta/v1.1/Datastreams"`,
    `params = {"$filter": "properties/kind eq '${stream}'", "$top": "100"}`,
    "streams = []",
    "while url:",
    "    page = requests.get(url, params=params, timeout=30).json()",
    "    streams += page[\"value\"]",
    "    url, params = page.get(\"@iot.nextLink\"), None",
  ].join("\n"));
  const file = ds && ds.files.find((f) => f.format === "parquet");
  setText($("example-pandas"), [
    "import pandas as pd",
    "",
    `frame = pd.read_parquet("${base}/open/bulk/${file ? file.path : `${stream}/${stream}-YYYY-MM-DD.parquet`}")`,
    "print(frame.groupby([\"device_id\", \"metric\"])[\"value\"].describe())",
  ].join("\n"));
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  let info;
  try {
    const resp = await fetch("/open/datasets.json");
    if (!resp.ok) throw new Error(String(resp.status));
    info = await resp.json();
  } catch {
    $("load-error").hidden = false;
    return;
  }
  const licence = $("licence-link");
  licence.href = info.licence.url;
  setText(licence, info.licence.id);
  const publisher = $("publisher-link");
  publisher.href = info.publisher.homepage;
  setText(publisher, info.publisher.name[lang()] || info.publisher.name.en);
  $("dataset-list").replaceChildren(...info.datasets.map(dataset));
  $("column-list").replaceChildren(...Object.keys(info.columns).map((name) => el("tr", {}, [
    el("th", { scope: "row" }, [el("code", { textContent: name })]),
    el("td", { textContent: t(`open.col.${name}`) }),
  ])));
  setText($("api-root"), info.api);
  const limits = info.limits;
  setText($("limit-anonymous"), t("open.limits_anonymous", { n: fmt.num(limits.anonymous_per_minute), burst: fmt.num(limits.anonymous_burst) }));
  setText($("limit-key"), t("open.limits_key", {
    n: fmt.num(limits.key_per_minute), rows: fmt.num(limits.key_rows_per_day), email: info.publisher.email,
  }));
  setText($("limit-timeout"), t("open.limits_timeout", { seconds: fmt.num(limits.timeout_s, 1) }));
  examples(info);
  document.body.dataset.ready = "1";
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

main();
