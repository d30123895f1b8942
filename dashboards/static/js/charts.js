import { lang } from "./i18n.js";

// Plotly in the dashboards' dark style. Sizes follow the root font size so 4K is the same chart, larger.
export const COLORS = {
  text: "#d6e2ee",
  muted: "#9db0c3",
  grid: "rgba(157,176,195,0.16)",
  ok: "#3ddc84",
  warning: "#ffc247",
  danger: "#ff5d5d",
  info: "#4fb3ff",
  rain: "#63c7ff",
  offline: "#7d8a97",
  congestion: ["#3ddc84", "#ffc247", "#ff8a3d", "#ff4d6a"],
};

export function rem() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}

/** A base layout: transparent, dark grid, font sized in rem. */
export function baseLayout(extra = {}) {
  const r = rem();
  return {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "DejaVu Sans, Noto Sans, sans-serif", color: COLORS.text, size: Math.round(r * 0.8) },
    margin: { l: r * 3, r: r * 1, t: r * 0.5, b: r * 2.2 },
    showlegend: false,
    separators: lang() === "en" ? ".," : ",.",
    hoverlabel: { font: { size: Math.round(r * 0.85) } },
    xaxis: { gridcolor: COLORS.grid, zerolinecolor: COLORS.grid, linecolor: COLORS.grid, fixedrange: true },
    yaxis: { gridcolor: COLORS.grid, zerolinecolor: COLORS.grid, linecolor: COLORS.grid, fixedrange: true },
    ...extra,
  };
}

export const CONFIG = { displayModeBar: false, responsive: true };

/** Plotly.react when Plotly is there (the bundle is deferred; the first call may precede it). */
export function react(div, data, layout, config = CONFIG) {
  if (!window.Plotly) return false;
  window.Plotly.react(div, data, layout, config);
  return true;
}
