"""Pure checks of dashboards.availability (the whole outage, against a stopped cluster, is in test_server_outage)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg as pg

from dashboards.availability import Availability, is_unavailable
from ioc.accounts import User


def test_sessions_ride_through_an_outage_for_the_grace_period_only() -> None:
    """A session the database confirmed is taken while it is away, within the grace period; one logged out,
    never seen, or with no grace configured is not. Driver errors that mean "away" are told from query bugs."""
    wall = User("wall", "viewer", display=True)
    grace = Availability(timedelta(minutes=10))
    grace.remember("token-a", wall)
    assert grace.recall("token-a") == wall and grace.recall("token-b") is None and grace.recall(None) is None
    grace.forget("token-a")
    assert grace.recall("token-a") is None
    none = Availability(timedelta(0))
    none.remember("token-a", wall)
    assert none.recall("token-a") is None
    seen: list[object] = []
    grace.listeners.append(seen.append)
    grace.failed(ConnectionRefusedError(111, "refused"))
    grace.failed(ConnectionRefusedError(111, "refused"))  # one outage, told once
    assert grace.down and seen == [grace.down_since]
    grace.recovered()
    assert not grace.down and seen[-1] is None and len(seen) == 2
    assert is_unavailable(ConnectionRefusedError()) and is_unavailable(pg.CannotConnectNowError("starting up"))
    assert is_unavailable(pg.InterfaceError("cannot call Connection.fetch(): connection is closed"))
    assert not is_unavailable(pg.InterfaceError("another operation is in progress"))
    assert not is_unavailable(pg.UndefinedTableError("no such table"))
