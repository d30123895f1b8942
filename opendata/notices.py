"""The ingest's commit notices (``NOTIFY ioc_ingest``, sent in the transaction that stores the rows), and the
registry's, heard by the open data's response cache and its MQTT push over a LISTEN connection that reconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import asyncpg

from ioc.db import NOTIFY_CHANNEL

RETRY_S = 5.0

logger = logging.getLogger(__name__)


async def listen(url: str, application: str, on_notice: Callable[[str], None], on_listening: Callable[[bool], None],
                 channels: Sequence[str] = (NOTIFY_CHANNEL,)) -> None:  # fmt: skip
    """Until cancelled: hand each notice's payload on ``channels`` to ``on_notice``; ``on_listening(True)`` once
    listening (notices sent before were missed), ``on_listening(False)`` when the connection is lost (then
    reconnect)."""
    while True:
        try:
            conn = await asyncpg.connect(url, server_settings={"application_name": application})
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("%s: cannot LISTEN (%s); retrying in %.0f s", application, exc, RETRY_S)
            await asyncio.sleep(RETRY_S)
            continue
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
        try:
            for channel in channels:
                await conn.add_listener(channel, lambda _conn, _pid, _channel, payload: on_notice(payload))
            on_listening(True)
            await lost.wait()
            logger.warning("%s: lost the LISTEN connection; reconnecting", application)
        finally:
            on_listening(False)
            await conn.close()
