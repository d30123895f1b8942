"""The city on arrays (simulators/history.py): stored as the ingest stores each format, the same day as the live
run, continuing into it, and camera latches that fire as the live ones do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from ingest.decoders import decode, route
from ioc import bulkload
from ioc.fleet import DeviceSpec, Fleet, load_fleet
from ioc.kinds import load_kinds
from ioc.records import HardwareClaim, Measurement
from ioc.settings import REPO_ROOT
from simulators import formats
from simulators.backfill import SPAN_S
from simulators.devices import Message, device_traits, latch
from simulators.history import SERIES, City, Device, Span, onsets, series_of, simulate
from simulators.models.geo import local_hours
from simulators.runner import Simulation


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")


def _readings(metrics: dict[str, np.ndarray], parts: dict[str, dict[str, np.ndarray]], k: int) -> tuple:
    def number(metric: str, v: np.ndarray) -> float | int:
        return int(v[k]) if metric in ("vehicle_count", "people_count", "interval_s") else float(v[k])

    return (
        {m: number(m, v) for m, v in metrics.items()},
        {p: {m: number(m, v) for m, v in part.items()} for p, part in parts.items()},
    )


def test_stored_rows_are_what_the_ingest_decodes_from_the_same_readings(fleet: Fleet) -> None:
    """Every demo device's history, sent in its own format through the ingest's decoders, is what is stored."""
    start = datetime(2025, 10, 14, 10, tzinfo=UTC).timestamp()  # a storm: up to 106 mm/h, 30 cm of water
    city = City(fleet, 11, start, start + 3600)
    assert city.rain_mm_h.max() > 50 and city.depth_cm.max() > 20
    checked = 0
    for spec in fleet.devices:
        _, phase, battery0, centrality = device_traits(11, spec)
        device = Device(spec, phase, battery0, centrality, np.random.default_rng(1))
        times = device.times(start, start + 3600)
        metrics, parts = series_of(city, spec.kind)(city, device, times)
        us, columns = formats.stored_series(spec, np.rint(times * 1e6).astype(np.int64), metrics, parts)
        stored = {
            (bulkload.to_datetime(us[k]), metric, part): values[k]
            for metric, part, values, rows in columns
            for k in range(len(us))
            if rows is None or rows[k]
        }
        decoded = {}
        for k, t in enumerate(times):
            when = bulkload.to_datetime(round(t * 1e6))
            values, lanes = _readings(metrics, parts, k)
            topic, payload = formats.telemetry(spec, formats.Reading(when, k + 1, values, lanes))
            # A payload without a time (Sensor.Community) is stored when it arrives: here, when it was sent.
            received = when if spec.format == "sensorcommunity" else when + timedelta(seconds=1)
            for r in decode(route(topic), payload, received):
                if isinstance(r, HardwareClaim):
                    continue
                assert isinstance(r, Measurement) and r.device_id == spec.device_id
                decoded[(r.time, r.metric, r.part)] = r.value
        assert stored.keys() == decoded.keys(), spec.device_id
        for key, value in decoded.items():
            assert stored[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (spec.device_id, key)
        checked += len(decoded)
    assert checked > 30_000
    assert {d.kind for d in fleet.devices} <= set(SERIES)
    assert {d.format for d in fleet.devices} == {
        "canonical",
        "senml",
        "legacy_flood",
        "trafficx",
        "fiware",
        "camx",
        "sensorcommunity",
    }


def _hourly(values: dict[float, float]) -> np.ndarray:
    """Mean of values by local hour of day."""
    hours = np.array([int(local_hours(t)[0]) for t in values])
    v = np.array(list(values.values()))
    return np.array([v[hours == h].mean() for h in range(24)])


def test_history_and_the_live_run_agree_on_the_shape_of_a_day(fleet: Fleet) -> None:
    """The same models give the same day: rush hours, evening crowds, tide-driven water and traffic-driven air,
    hour by hour."""
    picked = [d for d in fleet.devices if d.format == "canonical"]
    picked = [d for k in ("flood", "traffic", "camera", "air") for d in [x for x in picked if x.kind == k][:3]]
    small = Fleet(fleet.zones, tuple(picked))
    day = datetime(2025, 10, 20, 17, tzinfo=UTC)  # local midnight
    live: dict[tuple[str, str], dict[float, float]] = {}
    for m in Simulation(small, seed=4, start=day, encode=False).advance(day + timedelta(days=1)):
        if m.reading is not None:
            for metric, value in m.reading.metrics.items():
                live.setdefault((m.device_id, metric), {})[m.model_time.timestamp()] = value
    stored: dict[tuple[str, str], dict[float, float]] = {}
    for edge in range(int(day.timestamp()), int(day.timestamp()) + 86400, SPAN_S):
        rows, _ = simulate(small, 4, Span(edge, edge, edge + SPAN_S))
        for key, t, v in rows.readings():
            stored.setdefault((key[0], key[1]), {})[t] = v
    shapes = [("traffic", "vehicle_count"), ("traffic", "avg_speed_kmh"), ("camera", "people_count")]
    shapes += [("flood", "water_level_cm"), ("air", "pm25_ugm3"), ("air", "no2_ugm3"), ("air", "temperature_c")]
    for kind, metric in shapes:
        for spec in (d for d in picked if d.kind == kind):
            a, b = _hourly(live[(spec.device_id, metric)]), _hourly(stored[(spec.device_id, metric)])
            assert len(stored[(spec.device_id, metric)]) == 1440
            assert np.corrcoef(a, b)[0, 1] > 0.95 or np.ptp(a) < 1, (spec.device_id, metric, a, b)
            assert abs(a.mean() - b.mean()) <= 0.1 * abs(a.mean()) + 0.5, (spec.device_id, metric)


def test_the_live_run_continues_the_history_without_a_jump(fleet: Fleet) -> None:
    now = datetime(2025, 10, 20, 12, 3, 21, tzinfo=UTC)  # a storm: streets under 20 cm of water
    edge = now.timestamp() // SPAN_S * SPAN_S
    rows, _ = simulate(fleet, 5, Span(edge, edge, now.timestamp(), newest=True))
    last = rows.latest
    assert max(v for (_, metric, _), (_, v) in last.items() if metric == "water_level_cm") > 15
    first: dict[str, Message] = {}
    for m in Simulation(fleet, seed=5, speed=60, start=now, encode=False).advance(now + timedelta(minutes=2)):
        if m.reading is not None:
            first.setdefault(m.device_id, m)
    assert first.keys() == {d.device_id for d in fleet.devices}
    for device_id, m in first.items():
        newest = max(t for (d, _, _), (t, _) in last.items() if d == device_id)
        # Same cadence: the live run's first report is the one the history had next (times as stored).
        assert timedelta(seconds=59) < m.model_time - newest < timedelta(seconds=61), device_id
        for metric, tolerance in (("battery_pct", 0.6), ("water_level_cm", 3.0)):
            if metric in m.reading.metrics and (device_id, metric, "") in last:
                assert abs(m.reading.metrics[metric] - last[(device_id, metric, "")][1]) < tolerance, device_id


def test_latch_onsets_fire_as_the_live_latch_does() -> None:
    rng = np.random.default_rng(0)
    level = 10 * np.sin(np.arange(5000) / 50) + rng.normal(0, 3, 5000)  # noisy waves: many crossings
    on, off = level > 5, level < 6  # overlapping: released and fired again need not be one step
    device = type("D", (), {"latched": set()})()
    live = [i for i in range(len(level)) if latch(device, "x", bool(on[i]), bool(off[i]))]
    assert len(live) > 20 and list(onsets(on, off)) == live


NOISE_KINDS = """
kinds:
  noise:
    interval_s: 60
    metrics:
      laeq_db: {unit: dB, min: 20, max: 140}
      battery_pct: {unit: "%", min: 0, max: 100}
    simulate:
      laeq_db: {base: 50, traffic: 20, noise: 1.5, digits: 1}
"""


def test_a_kind_simulated_from_its_kinds_file_has_history_like_its_live_run(fleet: Fleet, tmp_path: Path) -> None:
    """A kind with a ``simulate`` block and no model of its own: the same formula day-long, live and history."""
    (tmp_path / "kinds.yaml").write_text(NOISE_KINDS, encoding="utf-8")
    kinds = load_kinds(tmp_path / "kinds.yaml")
    noise = DeviceSpec("NS-T-001", "noise", "canonical", "noise", "q1", 10.7766, 106.7031, 60)
    small = Fleet(fleet.zones, (noise,), kinds)
    day = datetime(2025, 10, 20, 17, tzinfo=UTC)  # local midnight
    live: dict[float, float] = {}
    for m in Simulation(small, seed=4, start=day, encode=False).advance(day + timedelta(days=1)):
        if m.reading is not None:
            live[m.model_time.timestamp()] = m.reading.metrics["laeq_db"]
    stored: dict[tuple[str, str], dict[float, float]] = {}
    for edge in range(int(day.timestamp()), int(day.timestamp()) + 86400, SPAN_S):
        rows, _ = simulate(small, 4, Span(edge, edge, edge + SPAN_S))
        for key, t, v in rows.readings():
            stored.setdefault((key[0], key[1]), {})[t] = v
    assert stored.keys() == {("NS-T-001", "laeq_db"), ("NS-T-001", "battery_pct")}
    history = stored[("NS-T-001", "laeq_db")]
    assert len(history) == 1440 and all(20 <= v <= 140 and v == round(v, 1) for v in history.values())
    a, b = _hourly(live), _hourly(history)
    assert np.corrcoef(a, b)[0, 1] > 0.95 and abs(a.mean() - b.mean()) < 0.5, (a, b)
