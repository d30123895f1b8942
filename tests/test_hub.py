"""The subscriber's bounded outbox (dashboards.hub.Subscriber): one message per channel, merged, never a queue."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY

import dashboards.metrics  # noqa: F401 - declares ioc_ws_dropped_total in the default registry
from dashboards.delta import apply, diff
from dashboards.hub import MAX_CONTROL_MESSAGES, Message, Subscriber

S0 = {"devices": [{"device_id": "A", "level": 1}, {"device_id": "B", "level": 2}], "count": 2}
S1 = {"devices": [{"device_id": "A", "level": 5}, {"device_id": "B", "level": 2}], "count": 2}
S2 = {
    "devices": [{"device_id": "A", "level": 5}, {"device_id": "B", "level": 7}, {"device_id": "C", "level": 0}],
    "count": 3,
}


def subscriber(states: dict[str, Any] | None = None) -> Subscriber:
    """A subscriber of a hub that only holds channel states (all the outbox reads of it)."""
    hub: Any = SimpleNamespace(states=states or {})
    return Subscriber(hub)


def dropped() -> float:
    """The ioc_ws_dropped_total counter now."""
    return REGISTRY.get_sample_value("ioc_ws_dropped_total") or 0.0


def test_deltas_of_one_channel_merge_into_one_that_gives_the_same_state() -> None:
    sub = subscriber()
    before = dropped()
    sub.offer(Message("zone:q1", "delta", diff(S0, S1)))
    sub.offer(Message("zone:q1", "delta", diff(S1, S2)))
    out = sub.take()
    assert [(m.channel, m.type) for m in out] == [("zone:q1", "delta")]
    assert apply(S0, out[0].data) == S2  # the client ends where it would have with both deltas
    assert dropped() == before + 1
    assert sub.take() == [] and not sub.wake.is_set()


def test_a_delta_after_an_undelivered_snapshot_becomes_the_current_snapshot() -> None:
    sub = subscriber({"zone:q1": S2})
    sub.offer(Message("zone:q1", "snapshot", S0))
    sub.offer(Message("zone:q1", "delta", diff(S0, S2)))
    (message,) = sub.take()
    assert message.type == "snapshot" and message.data == S2


def test_a_snapshot_replaces_an_undelivered_delta() -> None:
    sub = subscriber()
    sub.offer(Message("zone:q1", "delta", diff(S0, S1)))
    sub.offer(Message("zone:q1", "snapshot", S2))
    (message,) = sub.take()
    assert message.type == "snapshot" and message.data == S2


def test_channels_wait_side_by_side_and_control_messages_go_first() -> None:
    sub = subscriber()
    sub.offer(Message("summary", "delta", {"count": 3}))
    sub.offer(Message("alerts", "delta", {"count": 1}))
    sub.say(Message("", "heartbeat", {}))
    assert sub.wake.is_set()
    assert [(m.channel, m.type) for m in sub.take()] == [("", "heartbeat"), ("summary", "delta"), ("alerts", "delta")]


def test_control_messages_are_bounded_dropping_the_oldest() -> None:
    sub = subscriber()
    for n in range(MAX_CONTROL_MESSAGES + 10):
        sub.say(Message("x", "error", {"n": n}))
    out = sub.take()
    assert len(out) == MAX_CONTROL_MESSAGES
    assert out[0].data["n"] == 10 and out[-1].data["n"] == MAX_CONTROL_MESSAGES + 9


def test_the_outbox_stays_one_message_per_channel_however_many_updates() -> None:
    sub = subscriber()
    state = S0
    for level in range(1000):
        new = {"devices": [{"device_id": "A", "level": level}], "count": 1}
        sub.offer(Message("zone:q1", "delta", diff(state, new)))
        state = new
        assert len(sub.pending) == 1
    (message,) = sub.take()
    assert apply(S0, message.data) == state
