"""The wall writes only what changed, and what changes is still drawn (issue 18: a cheap wall at 4K).

In a real Chromium on /wall: the city map's air discs and incident badges follow each change of band, index,
suspicion, severity and escalation although unchanged values are no longer rewritten; the scale bar, measured
only when the map's size or extent changes, follows a resized wall.
"""

from __future__ import annotations

import pytest

from tests.support.browser import LiveServer, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# A map of its own in the wall page (the same map.js module the wall runs), fed one change after another.
MAP_STEPS = """
async () => {
  const { CityMap } = await import("/static/js/map.js");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", "400");
  svg.setAttribute("height", "400");
  document.body.appendChild(svg);
  const map = new CityMap(svg);
  map.setZones([
    { zone_id: "z1", name: "One", lat: 10.77, lon: 106.70 },
    { zone_id: "z2", name: "Two", lat: 10.80, lon: 106.73 },
  ]);
  const colours = { good: "rgb(0, 128, 0)", bad: "rgb(255, 0, 0)" };
  const paint = (node, key) => { node.style.fill = colours[key] || ""; node.style.color = key ? "rgb(1, 2, 3)" : ""; };
  const at = { device_id: "A1", lat: 10.78, lon: 106.71 };
  const air = () => {
    const g = svg.querySelector('.air-pt[data-device="A1"]');
    return { fill: g.firstElementChild.style.fill, text: g.lastElementChild.textContent,
      ink: g.lastElementChild.style.fill, suspect: g.dataset.suspect, status: g.dataset.status };
  };
  const seen = [];
  for (const p of [
    { band: "good", aqi: 40, status: "online" },
    { band: "good", aqi: 45, status: "online" },
    { band: "bad", aqi: 180, status: "online" },
    { band: "bad", aqi: 180, status: "online", suspect: { median: 30, neighbours: 3 } },
    { band: "bad", aqi: 180, status: "stale" },
  ]) {
    map.setAir([{ ...at, ...p }], paint);
    seen.push(air());
  }
  const shape = (type, r) => (type === "flood" ? `M0,${-r}L${r},0Z` : `M0,0L${r},${r}Z`);
  const label = (i) => `#${i.id} ${i.severity}`;
  const badge = () => {
    const g = svg.querySelector('.incident-badge[data-incident="7"]');
    return { d: g.firstElementChild.getAttribute("d"), severity: g.dataset.severity, escalated: g.dataset.escalated,
      title: g.lastElementChild.textContent, type: g.dataset.type };
  };
  const badges = [];
  for (const i of [
    { type: "flood", severity: "warning", escalated: false },
    { type: "flood", severity: "critical", escalated: true },
    { type: "accident", severity: "critical", escalated: true },
  ]) {
    map.setIncidents([{ id: 7, lat: 10.79, lon: 106.72, ...i }], shape, label);
    badges.push(badge());
  }
  svg.remove();
  return { seen, badges };
}
"""


async def test_map_layers_follow_every_change(live_server: LiveServer, open_page) -> None:
    """Each change of an air sensor's band, index, suspicion or status, and of an incident's type, severity or
    escalation, is drawn; an unchanged band keeps its colour."""
    watched = await open_page(f"{live_server.url}/wall")
    page = watched.page
    await wait_live(page)
    steps = await page.evaluate(MAP_STEPS)
    good, bad = "rgb(0, 128, 0)", "rgb(255, 0, 0)"
    assert [(s["fill"], s["text"], s["suspect"], s["status"]) for s in steps["seen"]] == [
        (good, "40", "0", "online"),
        (good, "45", "0", "online"),
        (bad, "180", "0", "online"),
        ("", "180", "1", "online"),  # a suspect sensor is drawn hollow whatever its band
        (bad, "180", "0", "stale"),
    ]
    assert [s["ink"] for s in steps["seen"]] == ["rgb(1, 2, 3)"] * 3 + [""] + ["rgb(1, 2, 3)"]
    assert [(b["severity"], b["escalated"], b["title"], b["type"]) for b in steps["badges"]] == [
        ("warning", "0", "#7 warning", "flood"),
        ("critical", "1", "#7 critical", "flood"),
        ("critical", "1", "#7 critical", "accident"),
    ]
    assert steps["badges"][1]["d"] != steps["badges"][2]["d"]
    watched.assert_clean()


async def test_scale_bar_follows_a_resized_wall(live_server: LiveServer, open_page) -> None:
    """The scale bar is measured again when the wall changes size (not on every update): 2 km stay 2 km."""
    watched = await open_page(f"{live_server.url}/wall", width=1920, height=1080)
    page = watched.page
    await wait_live(page)
    width = "() => parseFloat(document.getElementById('scale-bar').style.width) || 0"
    await page.wait_for_function(f"({width})() > 0", timeout=15000)
    small = await page.evaluate(width)
    await page.set_viewport_size({"width": 3840, "height": 2160})
    await page.wait_for_function(f"({width})() > {small * 1.5}", timeout=15000)
    watched.assert_clean()
