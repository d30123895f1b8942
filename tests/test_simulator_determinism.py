"""Same seed and start, same messages, byte for byte; another seed, other messages."""

from __future__ import annotations

import argparse
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ioc.fleet import Fleet, load_fleet
from ioc.settings import REPO_ROOT, Settings
from simulators import cli
from simulators.runner import Simulation

START = datetime(2025, 10, 14, 16, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(REPO_ROOT / "simulators" / "fleets" / "hcmc.yaml")


def run(
    fleet: Fleet, seed: int, scenario: str | None = "storm", faults: str | None = "0.1"
) -> list[tuple[object, ...]]:
    sim = Simulation(fleet, seed=seed, speed=60, start=START, scenario=scenario, faults=faults)
    return [
        (m.model_time, m.wall_time, m.topic, m.payload, m.retain, m.qos, m.action) for m in sim.messages(1800)
    ]


def test_same_seed_same_messages_byte_for_byte(fleet: Fleet) -> None:
    first, second = run(fleet, 42), run(fleet, 42)
    assert len(first) > 3000
    assert first == second
    assert any(str(message[2]).endswith("/snapshot") for message in first)


def test_a_different_seed_gives_different_messages(fleet: Fleet) -> None:
    first, other = run(fleet, 42), run(fleet, 43)
    assert first != other
    payloads_a = {p for *_, p, _, _, _ in first}
    payloads_b = {p for *_, p, _, _, _ in other}
    assert len(payloads_a & payloads_b) < 0.2 * len(payloads_a)


def test_messages_do_not_depend_on_how_the_window_is_cut(fleet: Fleet) -> None:
    whole = Simulation(fleet, seed=7, speed=60, start=START, scenario="incident", faults="0.05")
    pieces = Simulation(fleet, seed=7, speed=60, start=START, scenario="incident", faults="0.05")
    expected = [(m.topic, m.payload) for m in whole.messages(1200)]
    got = [(m.topic, m.payload) for m in pieces.connect()]
    for step in range(1, 121):
        got += [(m.topic, m.payload) for m in pieces.advance(START + timedelta(seconds=10 * step))]
    assert got == expected
    assert whole.fault_log == pieces.fault_log and whole.fault_log


def test_payload_timestamps_follow_the_wall_clock_and_state_follows_model_time(fleet: Fleet) -> None:
    wall = datetime(2026, 1, 1, tzinfo=UTC)
    sim = Simulation(fleet, seed=1, speed=60, start=START, wall_start=wall)
    messages = list(sim.messages(3600))
    last = messages[-1]
    assert last.model_time - START <= timedelta(hours=1)
    assert last.wall_time - wall == (last.model_time - START) / 60
    doc = next(
        json.loads(m.payload) for m in reversed(messages) if m.topic == "ioc/v1/flood/FL-BT-001/telemetry"
    )
    stamped = datetime.fromisoformat(doc["ts"].replace("Z", "+00:00"))
    assert wall < stamped <= wall + timedelta(minutes=1)


def test_dry_run_files_are_identical_for_the_same_seed(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    outputs = []
    for name in ("a", "b"):
        args = parser.parse_args(
            [
                "--seed",
                "5",
                "--speed",
                "60",
                "--start",
                "2025-10-14T15:00+07:00",
                "--scenario",
                "storm",
                "--duration",
                "20",
                "--faults",
                "0.05",
                "--dry-run",
                str(tmp_path / f"{name}.jsonl"),
                "--fault-log",
                str(tmp_path / f"{name}-faults.jsonl"),
            ]
        )
        assert cli.run(args, Settings(environment="test")) == 0
        outputs.append((tmp_path / f"{name}.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
    lines = [json.loads(line) for line in outputs[0].splitlines()]
    assert set(lines[0]) == {"t", "topic", "payload_b64"}
    assert base64.b64decode(lines[0]["payload_b64"]) == b"online"
    faults = [json.loads(line) for line in (tmp_path / "a-faults.jsonl").read_text().splitlines()]
    assert faults and {"fault", "device", "topic"} <= set(faults[0])
