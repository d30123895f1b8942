"""ioc.leader on the real database: one leader at a time, failover when it goes, wake-ups, failed rounds."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

from ioc.leader import LeaderJob
from tests.support.stack import until


class Rounds:
    """A job's work: counts its rounds; fails the rounds it is told to."""

    def __init__(self, failing: int = 0) -> None:
        self.count = 0
        self.failing = failing
        self.started: list[float] = []

    async def __call__(self) -> None:
        self.count += 1
        self.started.append(asyncio.get_running_loop().time())
        if self.count <= self.failing:
            raise asyncpg.PostgresError("a round that fails")


def job(database_url: str, key: int, rounds: Rounds, interval: float = 0.2) -> LeaderJob:
    return LeaderJob("test job", database_url, key, rounds, interval=lambda: interval, retry_s=0.1)


async def test_one_leader_and_failover_when_it_goes(database_url: str) -> None:
    key = secrets.randbits(31)
    first_rounds, second_rounds = Rounds(), Rounds()
    async with job(database_url, key, first_rounds) as first:
        await until(lambda: first.leader and first_rounds.count >= 2, 10, what="the first job leading")
        async with job(database_url, key, second_rounds) as second:
            started = first_rounds.count
            await until(lambda: first_rounds.count >= started + 3, 10, what="three more rounds of the leader")
            assert not second.leader and second_rounds.count == 0  # the lock is held: one leader only
            await first.__aexit__(None, None, None)  # the leader goes (its lock connection with it)
            assert not first.leader
            await until(lambda: second.leader and second_rounds.count >= 1, 10, what="the other job taking over")


async def test_wake_runs_a_round_before_its_time(database_url: str) -> None:
    rounds = Rounds()
    async with job(database_url, secrets.randbits(31), rounds, interval=3600) as woken:
        await until(lambda: rounds.count == 1, 10, what="the first round")
        woken.wake()
        await until(lambda: rounds.count == 2, 5, what="a round on wake()")


async def test_a_failed_round_is_logged_and_the_next_one_runs(database_url: str, caplog) -> None:  # type: ignore[no-untyped-def]
    rounds = Rounds(failing=2)
    async with job(database_url, secrets.randbits(31), rounds, interval=0.05) as failing:
        await until(lambda: rounds.count >= 4, 10, what="rounds after the failed ones")
        assert failing.leader
    assert sum("round failed: a round that fails" in r.getMessage() for r in caplog.records) == 2


async def test_the_gap_between_rounds_is_kept_when_woken_at_once(database_url: str) -> None:
    rounds = Rounds()
    gapped = LeaderJob(
        "test job", database_url, secrets.randbits(31), rounds, interval=lambda: 3600, retry_s=0.1, min_gap_s=0.5
    )
    async with gapped:
        await until(lambda: rounds.count == 1, 10, what="the first round")
        gapped.wake()
        await until(lambda: rounds.count == 2, 5, what="the woken round")
        # Woken at once, it still waited for min_gap_s (counted from before the round's lock check, a few ms earlier).
        assert rounds.started[1] - rounds.started[0] >= 0.45
