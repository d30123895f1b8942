"""Listener: a LISTEN connection on the database's notification channels that reconnects by itself."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

import asyncpg

from ioc.backoff import Backoff
from ioc.db import ALERTS_CHANNEL, FORECASTS_CHANNEL, INCIDENTS_CHANNEL, NOTIFY_CHANNEL, REGISTRY_CHANNEL

logger = logging.getLogger(__name__)

CHANNELS = (NOTIFY_CHANNEL, ALERTS_CHANNEL, REGISTRY_CHANNEL, FORECASTS_CHANNEL, INCIDENTS_CHANNEL)
BACKOFF_MAX_S = 2.0  # retried at least this often, so an outage ends within seconds
KEEPALIVE_S = 5.0

Notified = Callable[[object, int, str, str], None]  # asyncpg's listener: connection, pid, channel, payload
Gap = Callable[[Exception | None, float], None]  # the error (None: just connected) and the wait before retrying


def _set_event(event: asyncio.Event, *_: object) -> None:
    event.set()


async def listen(database_url: str, notified: Notified, gap: Gap) -> None:
    """Hold a LISTEN connection on ``CHANNELS`` forever, reconnecting with backoff.

    ``gap`` is called once connected (notifications may have been missed before) and whenever the
    connection is lost, so the caller can reload everything.
    """
    retry = Backoff(first=0.5, ceiling=BACKOFF_MAX_S)
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(database_url, timeout=10)
            lost = asyncio.Event()
            conn.add_termination_listener(functools.partial(_set_event, lost))
            for channel in CHANNELS:
                await conn.add_listener(channel, notified)
            gap(None, 0.0)
            logger.info("listening on %s", ", ".join(CHANNELS))
            retry.succeeded()
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), KEEPALIVE_S)
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=5)
            raise ConnectionError("listener connection closed")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            gap(exc, retry.upcoming)
        finally:
            if conn is not None and not conn.is_closed():
                conn.terminate()
        await asyncio.sleep(retry.failed())
