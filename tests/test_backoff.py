"""ioc.backoff: the one exponential-backoff rule behind the ingest's reconnects and ``ioc up``'s restarts."""

from __future__ import annotations

from ioc.backoff import Backoff, delay


def test_delay_doubles_from_first_up_to_the_ceiling() -> None:
    assert [delay(n, 0.5, 5.0) for n in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_counts_failures_and_starts_over_after_a_success() -> None:
    retry = Backoff(first=0.5, ceiling=10.0)
    assert retry.upcoming == 0.5  # what a failure now would wait, without counting it
    assert [retry.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert retry.upcoming == 10.0
    retry.succeeded()
    assert (retry.upcoming, retry.failed()) == (0.5, 0.5)
