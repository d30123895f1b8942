"""subscriber (the outbox) and changes (notifications folded into a refresh), without a database."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY

from dashboards.changes import Pending
from dashboards.subscriber import MAX_CONTROL_MESSAGES, Message, Subscriber
from ioc.db import ALERTS_CHANNEL, NOTIFY_CHANNEL, REGISTRY_CHANNEL
from tests.support.live import apply


def dropped() -> float:
    """The ``ioc_ws_dropped_total`` counter's value."""
    return REGISTRY.get_sample_value("ioc_ws_dropped_total") or 0.0


def test_a_slow_client_gets_one_merged_delta_per_channel() -> None:
    """Two undelivered deltas of a channel become one that equals applying both; other channels keep theirs."""
    sub = Subscriber()
    s0 = {"n": 1, "alerts": [{"id": 1, "state": "open"}]}
    s1 = {"n": 2, "alerts": [{"id": 1, "state": "acknowledged"}]}
    s2 = {"n": 2, "alerts": [{"id": 1, "state": "acknowledged"}, {"id": 2, "state": "open"}]}
    sub.watch("summary", Message("summary", "snapshot", s0))
    assert [(m.type, m.data) for m in sub.take()] == [("snapshot", s0)]
    before = dropped()
    sub.offer(Message("summary", "delta", {"n": 2, "alerts": [{"id": 1, "state": "acknowledged"}]}), s1)
    sub.offer(Message("events", "delta", {"events": []}), {"events": []})
    sub.offer(Message("summary", "delta", {"alerts": [{"id": 2, "state": "open"}]}), s2)
    assert dropped() == before + 1
    out = {m.channel: m for m in sub.take()}
    assert set(out) == {"summary", "events"} and out["summary"].type == "delta"
    assert apply(s0, out["summary"].data) == s2
    assert sub.take() == []


def test_a_delta_meeting_an_undelivered_snapshot_becomes_the_new_snapshot() -> None:
    sub = Subscriber()
    sub.watch("zone:q1", Message("zone:q1", "snapshot", {"n": 1}))
    sub.offer(Message("zone:q1", "delta", {"n": 2}), {"n": 2, "x": 0})
    [message] = sub.take()
    assert (message.type, message.data) == ("snapshot", {"n": 2, "x": 0})


def test_control_messages_come_first_and_are_bounded() -> None:
    sub = Subscriber()
    sub.watch("alerts", Message("alerts", "snapshot", {"alerts": []}))
    for i in range(MAX_CONTROL_MESSAGES + 5):
        sub.say(Message("", "error", {"code": str(i)}))
    out = sub.take()
    assert len(out) == MAX_CONTROL_MESSAGES + 1
    assert out[0].data["code"] == "5" and out[-1].type == "snapshot"  # the oldest five were dropped


def test_unwatch_drops_what_waits_and_the_channel() -> None:
    sub = Subscriber()
    sub.watch("events", Message("events", "snapshot", {"events": []}))
    assert sub.watches("events") and sub.channels() == ["events"]
    sub.unwatch("events")
    assert not sub.watches("events") and sub.channels() == [] and sub.take() == []


@pytest.mark.asyncio
async def test_wait_returns_when_something_is_offered() -> None:
    sub = Subscriber()
    started = asyncio.get_running_loop().time()
    await sub.wait(0.05)  # nothing waiting: returns after the time given, without an error
    assert asyncio.get_running_loop().time() - started >= 0.04
    waiter = asyncio.create_task(sub.wait(30.0))
    await asyncio.sleep(0)
    sub.say(Message("", "heartbeat", {}))
    await asyncio.wait_for(waiter, 5.0)


def test_message_text_is_built_once() -> None:
    message = Message("summary", "delta", {"n": 1}, ts="2026-11-27T00:00:00Z")
    assert json.loads(message.text()) == {
        "channel": "summary",
        "type": "delta",
        "ts": "2026-11-27T00:00:00Z",
        "data": {"n": 1},
    }
    assert message.text() is message.text()


def test_notifications_fold_into_one_pending_refresh() -> None:
    p = Pending()
    assert not p
    first = {"devices": ["A", "B"], "events": 0}
    assert p.note(NOTIFY_CHANNEL, json.dumps(first)) == first
    p.note(NOTIFY_CHANNEL, json.dumps({"devices": ["B", "C"], "events": 2}))
    assert p.devices == {"A", "B", "C"} and p.events and not (p.all_devices or p.alerts or p.full)
    p.note(ALERTS_CHANNEL, json.dumps({"id": 7}))
    assert p.alerts and not p.full


@pytest.mark.parametrize("payload", ['{"rows": 3}', "not json", "[1, 2]"])
def test_a_notice_that_names_no_devices_reloads_them_all(payload: str) -> None:
    p = Pending()
    assert p.note(NOTIFY_CHANNEL, payload) == ({"rows": 3} if payload.startswith("{") else {})
    assert p.all_devices and not p.devices and p


def test_a_registry_notice_reloads_everything() -> None:
    p = Pending()
    assert p.note(REGISTRY_CHANNEL, "import") == {}
    assert p.full and p
