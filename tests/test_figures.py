"""figures (pure): flood levels, congestion, summary and yesterday figures; and channel deltas (delta)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from dashboards import figures
from dashboards.delta import LIST_KEYS, NOTHING, diff, merge
from dashboards.encoding import dumps
from dashboards.live_state import META, LiveState
from ioc import thresholds
from tests.support.live import apply


def device(
    device_id: str, kind: str, zone: str = "z1", status: str = "online", **latest: float
) -> dict[str, Any]:
    """A device object as the loaders build it."""
    metadata = {"warning_cm": 20, "danger_cm": 30} if kind == "flood" else {"free_flow_kmh": 50}
    d = {
        "device_id": device_id,
        "kind": kind,
        "name": device_id,
        "zone": zone,
        "status": status,
        "interval_s": 60,
        "metadata": metadata,
        "thresholds": figures.device_thresholds(kind, metadata),
        "latest": {k: {"value": v, "time": "2026-11-21T00:00:00Z"} for k, v in latest.items()},
    }
    d["level"] = figures.flood_level(latest.get("water_level_cm"), metadata) if kind == "flood" else None
    d["congestion"] = figures.congestion(latest.get("avg_speed_kmh"), metadata) if kind == "traffic" else None
    return d


def test_flood_level_uses_device_thresholds() -> None:
    assert [figures.flood_level(v, {"warning_cm": 15, "danger_cm": 25}) for v in (None, 14.9, 15, 25)] == [
        None,
        "ok",
        "warning",
        "danger",
    ]
    assert figures.flood_level(20, {}) == "warning" and figures.flood_level(30, {}) == "danger"


def test_congestion_bands() -> None:
    meta = {"free_flow_kmh": 40}
    assert [figures.congestion(v, meta) for v in (None, 28, 27.9, 20, 12, 11.9)] == [None, 0, 1, 1, 2, 3]


def test_summary_counts_and_rankings() -> None:
    devices = [
        device("F1", "flood", water_level_cm=35, rainfall_mm_h=10),
        device("F2", "flood", water_level_cm=22),
        device("F3", "flood", status="stale", water_level_cm=99),
        device("T1", "traffic", avg_speed_kmh=10, vehicle_count=30),
        device("T2", "traffic", zone="z2", avg_speed_kmh=45, vehicle_count=10),
        device("C1", "camera", status="unknown"),
    ]
    zones = [
        {"zone_id": "z1", "name": "Z1", "priority": True},
        {"zone_id": "z2", "name": "Z2", "priority": False},
    ]
    alerts = [{"id": 1, "zone": "z2", "severity": "warning", "state": "acknowledged"}]
    s = figures.summary_view(zones, devices, alerts, {"z1": 2}, {"max_level_cm": None})
    assert (
        s["devices"]["total"] == 6
        and s["devices"]["stale"] == 1
        and s["devices"]["by_kind"]["flood"]["total"] == 3
    )
    assert s["flood"]["max_level_cm"] == 35 and s["flood"]["max_device_id"] == "F1"  # the stale 99 is ignored
    assert (s["flood"]["points_warning"], s["flood"]["points_danger"]) == (2, 1)
    assert [t["device_id"] for t in s["flood"]["top"]] == ["F1", "F2"]
    assert s["traffic"]["flow_veh_h"] == 2400 and s["traffic"]["congested"] == 1
    assert s["traffic"]["worst"][0]["device_id"] == "T1" and s["traffic"]["worst"][0]["congestion"] == 3
    assert s["alerts"] == {"open": 1, "critical": 0, "unacknowledged": 0}
    assert [(z["zone_id"], z["state"]) for z in s["zones"]] == [("z1", "critical"), ("z2", "warning")]
    assert s["cameras"]["incidents_1h"] == 2


def test_rankings_keep_the_top_ten_in_order_with_ties_by_id() -> None:
    """Top flood points: highest first, equal levels (to 0.1 cm) by device id, ten at most; worst
    detectors: lowest speed against free flow first. Per-zone lines carry the zone's own maxima."""
    levels = [5, 12.04, 12.01, 40, 40, 3, 17, 25, 8, 31, 22, 19]
    devices = [device(f"F{i:02d}", "flood", zone=f"z{i % 2}", water_level_cm=v) for i, v in enumerate(levels)]
    devices += [device(f"T{i}", "traffic", zone="z1", avg_speed_kmh=v) for i, v in enumerate((30, 12, 49, 12))]
    devices[7]["metadata"] = {"warning_cm": True, "danger_cm": float("nan")}  # not numbers: the defaults apply
    devices[7]["thresholds"] = figures.device_thresholds("flood", devices[7]["metadata"])
    zones = [{"zone_id": z, "name": z, "priority": False} for z in ("z0", "z1")]
    s = figures.summary_view(zones, devices, [], {}, {})
    top = s["flood"]["top"]
    assert [t["device_id"] for t in top] == ["F03", "F04", "F09", "F07", "F10", "F11", "F06", "F01", "F02", "F08"]
    assert [t["level_cm"] for t in top[-3:]] == [12.0, 12.0, 8]
    assert (top[3]["warning_cm"], top[3]["danger_cm"]) == (thresholds.DEFAULT_WARNING_CM, thresholds.DEFAULT_DANGER_CM)
    assert [w["device_id"] for w in s["traffic"]["worst"]] == ["T1", "T3", "T0", "T2"]
    by_zone = {z["zone_id"]: z for z in s["zones"]}
    assert (by_zone["z0"]["flood_max_cm"], by_zone["z1"]["flood_max_cm"]) == (40, 40)
    assert (by_zone["z0"]["speed_kmh"], by_zone["z1"]["speed_kmh"]) == (None, 25.8)


def test_delta_carries_only_changes_by_key() -> None:
    old = {
        "a": 1,
        "devices": [{"device_id": "x", "v": 1, "name": "X"}, {"device_id": "y", "v": 2}],
        "tags": [1, 2],
    }
    new: dict[str, Any] = {
        "a": 1,
        "devices": [{"device_id": "x", "v": 5, "name": "X"}, {"device_id": "z", "v": 3}],
        "tags": [1, 2],
    }
    d = diff(old, new)
    assert d == {
        "devices": [
            {"device_id": "x", "v": 5},
            {"device_id": "z", "v": 3},
            {"device_id": "y", "_removed": True},
        ]
    }
    assert diff(new, new) is NOTHING
    by_key = {i["device_id"]: i for i in apply(old, d)["devices"]}
    assert by_key == {i["device_id"]: i for i in new["devices"]}


def test_list_keys_are_the_server_s_by_list_name() -> None:
    """A changed event (its snapshot stored later) is one event updated by its ``id``; a list the key table
    does not name is sent whole, even if its objects carry an ``id``."""
    event = {"id": "C|x|t1", "time": "t1", "device_id": "C", "type": "x", "snapshot_url": None}
    later = {**event, "snapshot_url": "/api/v1/devices/C/snapshot"}
    d = diff({"events": [event]}, {"events": [later]})
    assert d == {"events": [{"id": "C|x|t1", "snapshot_url": "/api/v1/devices/C/snapshot"}]}
    assert apply({"events": [event]}, d) == {"events": [later]}
    boxes = {"attrs": {"boxes": [{"id": 1, "w": 2}]}}
    assert diff(boxes, {"attrs": {"boxes": [{"id": 1, "w": 3}]}}) == {"attrs": {"boxes": [{"id": 1, "w": 3}]}}
    # A list named like a keyed one whose items lack the key is sent whole too (no KeyError).
    assert diff({"zones": [{"n": 1}]}, {"zones": [{"n": 2}]}) == {"zones": [{"n": 2}]}
    assert META["keys"] is LIST_KEYS and LIST_KEYS["events"] == "id"


def test_levels_and_bands_are_computed_by_the_server() -> None:
    """Every level and band the pages show comes with the row it belongs to, and the defaults in ``meta``."""
    devices = [
        device("F1", "flood", water_level_cm=25),
        device("T1", "traffic", avg_speed_kmh=12),
        device("T2", "traffic", avg_speed_kmh=40),
        device("T3", "traffic", zone="z2", avg_speed_kmh=45),
    ]
    zones = [{"zone_id": "z1", "name": "Z1", "priority": False}, {"zone_id": "z2", "name": "Z2", "priority": False}]
    s = figures.summary_view(zones, devices, [], {}, {})
    assert s["flood"]["top"][0] == {
        "device_id": "F1", "name": "F1", "zone": "z1", "level_cm": 25, "level": "warning",
        "warning_cm": 20, "danger_cm": 30, "rain_mm_h": None,
    }
    assert [(w["device_id"], w["speed_ratio"], w["congestion"]) for w in s["traffic"]["worst"]] == [
        ("T1", 0.24, 3), ("T2", 0.8, 0), ("T3", 0.9, 0)
    ]
    assert s["traffic"]["mean_speed_kmh"] == 32.3 and s["traffic"]["mean_speed_level"] == "ok"
    assert figures.mean_speed_level(14.9) == "critical" and figures.mean_speed_level(24.9) == "warning"
    by_zone = {z["zone_id"]: z["congestion"] for z in s["zones"]}
    assert by_zone == {"z1": 1, "z2": 0}  # z1: mean ratio (0.24 + 0.8) / 2 = 0.52 -> slow
    assert device("T9", "traffic")["thresholds"] == {"free_flow_kmh": 50}
    assert figures.device_thresholds("traffic", {}) == {"free_flow_kmh": thresholds.DEFAULT_FREE_FLOW_KMH}
    assert figures.device_thresholds("camera", {"warning_cm": 1}) == {}
    live = LiveState({"flood"})
    assert live.view("alerts") == {"alerts": [], "meta": META}
    assert META["thresholds"]["traffic"]["free_flow_kmh"] == thresholds.DEFAULT_FREE_FLOW_KMH


def test_yesterday_figures_from_rollup_rows() -> None:
    """The same-time-yesterday line from rollup rows, without a database: levels judged by each device's
    thresholds, flow from each detector's own reporting interval (its rollup, else its registry entry)."""
    meta = {"warning_cm": 20, "danger_cm": 30}

    def row(device_id: str, metric: str, avg: float | None, top: float | None = None) -> dict[str, Any]:
        return {"device_id": device_id, "metric": metric, "avg": avg, "max": top, "metadata": meta, "interval_s": 60}

    rows = [
        row("F1", "water_level_cm", 24.0, 25.04),
        row("F2", "water_level_cm", 9.0, 10.0),
        row("T1", "avg_speed_kmh", 30.0),
        row("T2", "avg_speed_kmh", 41.0),
        row("T1", "vehicle_count", 10.0),
        row("T1", "interval_s", 30.0),
        row("T2", "vehicle_count", 5.0),
    ]
    assert figures.yesterday(rows, {"z1": 2, None: 1}) == {
        "max_level_cm": 25.0,
        "mean_speed_kmh": 35.5,
        "flow_veh_h": 1500,  # T1: 10 per 30 s, T2: 5 per 60 s
        "incidents_1h": 3,
        "points_warning": 1,
    }
    assert figures.yesterday([], {}) == {
        "max_level_cm": None,
        "mean_speed_kmh": None,
        "flow_veh_h": None,
        "incidents_1h": 0,
        "points_warning": 0,
    }


def test_merged_deltas_equal_applying_both() -> None:
    s0 = {"n": 1, "alerts": [{"id": 1, "state": "open"}], "flood": {"max": 10}}
    s1 = {
        "n": 2,
        "alerts": [{"id": 1, "state": "acknowledged"}, {"id": 2, "state": "open"}],
        "flood": {"max": 10},
    }
    s2 = {"n": 2, "alerts": [{"id": 2, "state": "open", "x": 1}], "flood": {"max": 12}}
    d1, d2 = diff(s0, s1), diff(s1, s2)
    merged = merge(d1, d2)
    for result in (apply(s0, merged), apply(apply(s0, d1), d2)):
        assert result["n"] == 2 and result["flood"] == {"max": 12}
        assert {a["id"]: a for a in result["alerts"]} == {2: {"id": 2, "state": "open", "x": 1}}


def test_json_is_always_finite() -> None:
    assert dumps({"a": math.nan, "b": [math.inf, 1.5]}) == '{"a":null,"b":[null,1.5]}'
    # What the encoder cannot take directly is cleaned too: times as UTC with Z, decimals as numbers.
    at = datetime(2026, 11, 21, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    cleaned = dumps({"t": at, "v": Decimal("2.5"), "n": [Decimal("NaN")]})
    assert cleaned == '{"t":"2026-11-21T08:00:00Z","v":2.5,"n":[null]}'
    assert dumps({"ok": [1, "ư", None, True]}) == '{"ok":[1,"ư",null,true]}'


def test_simulator_and_server_share_one_free_flow_speed() -> None:
    """A detector without ``free_flow_kmh`` at 18 km/h: 0.36 of the shared 50 km/h, so the server says
    heavy and the simulated vendor feed says congested (below 0.4 of it); with the old 40 it said not."""
    from ioc.fleet import DeviceSpec
    from simulators.fiware import traffic_flow_observed
    from simulators.reports import Reading

    spec = DeviceSpec("TR-X", "traffic", "TrafficFlowObserved", "x", "z1", 10.7, 106.7, 60)
    metrics = {"vehicle_count": 10.0, "interval_s": 60.0, "avg_speed_kmh": 18.0, "occupancy_pct": 50.0}
    feed = traffic_flow_observed(spec, Reading(datetime(2026, 11, 21, tzinfo=UTC), 1, metrics))
    assert feed["congested"] is True
    assert figures.congestion(18.0, {}) == 2
