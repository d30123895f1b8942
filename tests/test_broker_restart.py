"""A broker stopped for 10 s and started again while 2,000 msg/s of QoS 1 readings arrive from 250 devices
that reconnect at once: every message the broker acknowledged is stored, none twice (issue 11).

The ingest worker comes back seconds after the devices (its reconnect backoff); until then the broker
queues for the worker's shared subscription, restored from the persistence file by ioc's Mosquitto build.
`make bench-broker-restart` runs the same scenario three times."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ioc.up import Stack
from tests.restart_load import restart_under_load
from tests.support.stack import log_tail, own_stack, start_worker

DEVICES = 250
IDS = [f"LOAD-{i:05d}" for i in range(1, DEVICES + 1)]


@pytest.fixture(scope="module")
def restart_stack(module_scratch_dir: Callable[[str], Path]) -> Iterator[Stack]:
    """A database and broker of our own (this test stops the broker), with 250 load devices."""
    with own_stack(module_scratch_dir("ioc-restart-"), DEVICES) as stack:
        yield stack


async def test_broker_restart_under_load_loses_and_doubles_nothing(restart_stack: Stack) -> None:
    worker = start_worker(restart_stack, "ioc-ingest-restart")
    try:
        result = await restart_under_load(restart_stack, restart_stack.service_mqtt_url("simulate"), IDS)
        assert result.reconnects >= 4, "every publisher was cut off by the stop and came back"
        assert result.acked > 10_000, result  # about 30,000 on a quiet machine
        assert result.lost == 0, result
        assert result.duplicates == 0, result
        assert worker.proc.poll() is None, log_tail(worker)
    finally:
        worker.stop()
