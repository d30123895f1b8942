"""RateLimiter: per-device token buckets in bounded memory."""

from __future__ import annotations

import pytest

from ingest.ratelimit import RateLimiter
from ioc.settings import Settings


def test_burst_then_refill() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    assert [limiter.allow("A", 0.0) for _ in range(4)] == [True, True, True, False]
    assert not limiter.allow("A", 0.4)  # 0.8 tokens
    assert limiter.allow("A", 0.5)  # one token refilled at 0.5 s
    assert not limiter.allow("A", 0.5)
    assert [limiter.allow("A", 100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_devices_are_independent() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.allow("A", 0.0)
    assert not limiter.allow("A", 0.0)
    assert limiter.allow("B", 0.0)


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1)
    assert limiter.allow("A", 10.0)
    assert not limiter.allow("A", 5.0)
    assert not limiter.allow("A", 10.5)
    assert limiter.allow("A", 11.0)


def test_sustained_rate() -> None:
    limiter = RateLimiter(rate_per_s=20.0, burst=200)
    allowed = sum(limiter.allow("A", i / 1000) for i in range(60_000))  # 1000 msg/s for 60 s
    assert allowed == pytest.approx(200 + 20 * 60, abs=2)


def test_memory_is_bounded_and_idle_devices_are_forgotten() -> None:
    limiter = RateLimiter(rate_per_s=10.0, burst=10, max_devices=100)
    for i in range(100):
        limiter.allow(f"D{i}", 0.0)
    assert len(limiter) == 100
    limiter.allow("NEW", 5.0)  # everyone idle for >= burst/rate: all forgotten, losslessly
    assert len(limiter) == 1
    for i in range(10_000):
        limiter.allow(f"FLOOD{i}", 5.0)  # no one idle: oldest dropped, size stays bounded
        assert len(limiter) <= 100


def test_from_settings_uses_the_configured_rate_and_burst() -> None:
    limiter = RateLimiter.from_settings(Settings(ingest_rate_limit_per_s=1.0, ingest_rate_burst=1))
    assert limiter.allow("A", 0.0)
    assert not limiter.allow("A", 0.0)
    assert limiter.allow("A", 1.0)


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=0.0, burst=1)
