"""The alert engine's notified rounds (only the kinds and devices committed, plus pending timers) move the
alerts exactly as rounds over every rule and device do: same transitions, at the same round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from dashboards.alerts.engine import AlertEngine
from ioc.db import NOTIFY_CHANNEL
from ioc.merges import MERGE_LATEST_ARRAYS
from ioc.settings import Settings

RULES = """
version: 1
evaluate_every_s: {every}
rules:
  - id: t_rnd_level
    type: threshold
    kind: flood
    metric: water_level_cm
    warning: 20
    critical: 30
    hysteresis: 3
    for_s: 2
    clear_delay_s: 3
  - id: t_rnd_rise
    type: rate_of_rise
    kind: flood
    metric: water_level_cm
    window_s: 600
    warning: 10
    critical: 20
    for_s: 0
    clear_delay_s: 2
  - id: t_rnd_traffic
    type: threshold
    kind: traffic
    metric: avg_speed_kmh
    direction: below
    warning: 15
    for_s: 1
    clear_delay_s: 1
"""
STEP_S = 0.5
# Water levels per step for each device (None: no reading that step). Device 1 goes quiet while its level
# holds (its alert opens on time alone); device 2 rises fast then falls; device 3 stays low throughout.
SCRIPT: list[list[float | None]] = [
    [5, 12, 22, 24, 25, 26, 31, 33, 29, 27, 18, 12, 10, 9] + [8] * 16,
    [5, 8, 21, 23] + [None] * 8 + [5] + [None] * 17,
    [2, 2, 2, 15, 25, 35, 35, 20, 5] + [2] * 21,
    [3] * 30,
]


async def run_script(pool: asyncpg.Pool, database_url: str, rules: Path, every: float, tag: str) -> list[tuple]:
    """Play SCRIPT on fresh devices through an engine whose full rounds come every ``every`` s; its transitions."""
    rules.write_text(RULES.format(every=every))
    settings = Settings(database_url=database_url, alert_rules_file=rules, environment="test")
    engine = AlertEngine(pool, database_url, settings)
    clock = [1000.0]
    engine.clock = lambda: clock[0]
    devices = [f"T-RND-{tag}-{i}" for i in range(len(SCRIPT))]
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name) VALUES ($1, 'flood', $1) ON CONFLICT DO NOTHING",
        [(d,) for d in devices],
    )
    base = datetime.now(UTC) - timedelta(minutes=5)
    transitions: list[tuple] = []
    for step in range(len(SCRIPT[0])):
        at = base + timedelta(seconds=step)
        changed = [(d, levels[step]) for d, levels in zip(devices, SCRIPT, strict=True) if levels[step] is not None]
        if changed:
            await pool.executemany(
                "INSERT INTO measurements (time, device_id, metric, value) VALUES ($1, $2, 'water_level_cm', $3)",
                [(at, d, v) for d, v in changed],
            )
            ids = [d for d, _ in changed]
            await pool.execute(
                MERGE_LATEST_ARRAYS, ids, ["water_level_cm"] * len(ids), [""] * len(ids), [at] * len(ids),
                [v for _, v in changed],
            )  # fmt: skip
            engine._notified(NOTIFY_CHANNEL, {"w": "t-rnd", "kinds": ["flood"], "devices": ids})
        await engine.evaluate()
        rows = await pool.fetch(
            "SELECT h.id, a.rule, a.device_id, h.from_state, h.to_state, h.severity FROM alert_history h "
            "JOIN alerts a ON a.id = h.alert_id WHERE a.device_id = ANY($1) AND a.rule LIKE 't_rnd_%' ORDER BY h.id",
            devices,
        )
        seen = {t[-1] for t in transitions}
        for r in rows:
            if r["id"] not in seen:
                index = devices.index(r["device_id"])
                transitions.append((step, r["rule"], index, r["from_state"], r["to_state"], r["severity"], r["id"]))
        clock[0] += STEP_S
    return sorted(t[:-1] for t in transitions)  # within a round, devices are stepped in no set order


@pytest.fixture
async def clean(pool: asyncpg.Pool) -> None:
    """No alert of these rules left from an earlier run of the test."""
    await pool.execute("UPDATE alerts SET state = 'resolved' WHERE rule LIKE 't_rnd_%'")


@pytest.mark.usefixtures("clean")
async def test_notified_rounds_move_alerts_as_full_rounds_do(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    """Full rounds every 0.1 s (every round: the engine before notified rounds) and every 4 s give the same
    transitions at the same steps, including an alert that opens on time alone and ones that resolve."""
    everything = await run_script(pool, database_url, tmp_path / "full.yaml", 0.1, "F")
    notified = await run_script(pool, database_url, tmp_path / "notified.yaml", 4, "N")
    assert notified == everything
    opened = {(rule, device) for _, rule, device, _, to, _ in everything if to == "open"}
    resolved = {(rule, device) for _, rule, device, _, to, _ in everything if to == "resolved"}
    assert {("t_rnd_level", 0), ("t_rnd_level", 1), ("t_rnd_rise", 2)} <= opened
    assert ("t_rnd_level", 1) in resolved and ("t_rnd_rise", 2) in resolved
    assert not any(device == 3 for _, _, device, _, _, _ in everything)
