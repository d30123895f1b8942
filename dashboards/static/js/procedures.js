// Procedures (SOP) of the incident types: admins edit a type's steps and time limits and save a new version;
// everyone else reads them. Incidents already open keep the version they started with (the server's rule).
import { initI18n, t, lang, applyI18n, bindLangToggle } from "./i18n.js";
import * as fmt from "./format.js";
import { getJSON, putJSON, enc } from "./api.js";
import { $, pageConfig, setText } from "./common.js";
import { txt } from "./incidents.js";

const config = pageConfig();
const state = { types: [], current: null };

function stepRow(step) {
  const tr = $("tpl-step").content.firstElementChild.cloneNode(true);
  applyI18n(tr);
  tr.querySelector(".s-id").value = step.id || "";
  tr.querySelector(".s-vi").value = step.text?.vi || "";
  tr.querySelector(".s-en").value = step.text?.en || "";
  tr.querySelector(".s-required").checked = step.required ?? true;
  tr.querySelector(".s-when").value = step.when || "any";
  return tr;
}

function readSteps() {
  return [...$("steps").children].map((tr) => ({
    id: tr.querySelector(".s-id").value.trim(),
    text: { vi: tr.querySelector(".s-vi").value.trim(), en: tr.querySelector(".s-en").value.trim() },
    required: tr.querySelector(".s-required").checked,
    when: tr.querySelector(".s-when").value,
  }));
}

/** The limits table as the API's ``limits``: an empty cell is no limit at that severity. */
function readLimits() {
  const limits = { acknowledge_min: {}, resolve_min: {} };
  for (const input of document.querySelectorAll("[data-limit]")) {
    if (input.value.trim() !== "") limits[input.dataset.limit][input.dataset.severity] = Number(input.value);
  }
  return limits;
}

function showEditions(editions) {
  $("editions").replaceChildren(...(editions || []).map((e) => {
    const li = document.createElement("li");
    li.textContent = t("procedures.edition", { version: e.version, who: e.created_by, time: fmt.dateTime(e.created_at) });
    return li;
  }));
  if (!editions?.length) $("editions").replaceChildren(Object.assign(document.createElement("li"), { textContent: t("procedures.from_file") }));
}

function show(procedure) {
  state.current = procedure;
  setText($("version"), t("procedures.version", { name: txt(procedure.name), version: procedure.version }));
  $("steps").replaceChildren(...procedure.steps.map(stepRow));
  for (const input of document.querySelectorAll("[data-limit]")) {
    const value = procedure.limits?.[input.dataset.limit]?.[input.dataset.severity];
    input.value = value ?? "";
  }
  showEditions(procedure.editions);
  document.body.dataset.version = String(procedure.version);
  document.querySelectorAll("#editor input, #editor select").forEach((el) => { el.disabled = !config.canEdit; });
}

async function load(type) {
  show(await getJSON(`/api/v1/procedures/${enc(type)}`));
  setText($("status"), "");
}

async function save(ev) {
  ev.preventDefault();
  const status = $("status");
  status.dataset.state = "busy";
  setText(status, t("procedures.saving"));
  try {
    const body = { base_version: state.current.version, steps: readSteps(), limits: readLimits() };
    const saved = await putJSON(`/api/v1/procedures/${enc(state.current.type)}`, body);
    show(saved);
    status.dataset.state = "saved";
    setText(status, t("procedures.saved", { version: saved.version }));
  } catch (err) {
    status.dataset.state = "error";
    setText(status, t("procedures.not_saved", { reason: err.message }));
  }
}

function bindEditor() {
  $("add-step").addEventListener("click", () => {
    const row = stepRow({ id: "", text: {}, required: true, when: "any" });
    $("steps").appendChild(row);
    row.querySelector(".s-id").focus();
  });
  $("steps").addEventListener("click", (ev) => {
    const button = ev.target.closest("button");
    if (!button) return;
    const tr = button.closest("tr");
    if (button.hasAttribute("data-remove")) tr.remove();
    const move = Number(button.dataset.move || 0);
    if (move < 0 && tr.previousElementSibling) tr.parentElement.insertBefore(tr, tr.previousElementSibling);
    if (move > 0 && tr.nextElementSibling) tr.parentElement.insertBefore(tr.nextElementSibling, tr);
  });
  $("editor").addEventListener("submit", save);
}

async function main() {
  await initI18n();
  bindLangToggle($("lang-toggle"));
  document.body.classList.toggle("read-only", !config.canEdit);
  $("readonly").hidden = Boolean(config.canEdit);
  bindEditor();
  state.types = (await getJSON("/api/v1/procedures")).items;
  const select = $("type");
  select.replaceChildren(...state.types.map((p) => new Option(`${txt(p.name)} (${p.type})`, p.type)));
  const wanted = new URLSearchParams(location.search).get("type");
  if (wanted && state.types.some((p) => p.type === wanted)) select.value = wanted;
  select.addEventListener("change", () => load(select.value));
  await load(select.value);
  document.body.dataset.ready = "true";
  document.documentElement.lang = lang();
}

main();
