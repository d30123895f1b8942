"""The bulk files' job in ``ioc serve``: one leader among the servers sharing a bulk folder runs ``ioc opendata
bulk`` every ``IOC_OPEN_BULK_EVERY_S`` (it writes only the days that are missing, so most runs take a moment).
``IOC_OPEN_BULK_JOB=false`` turns it off (files written by a cron'd ``ioc opendata bulk`` are served as well).

Leadership is a PostgreSQL advisory lock (keyed by the folder) on a dedicated connection. The files are
written by a child process, so the CSV and Parquet work (and pyarrow's memory) never sit in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from types import TracebackType

import asyncpg

from ioc.settings import Settings
from opendata.bulk import lock_key

logger = logging.getLogger(__name__)

LEADER_RETRY_S = 5.0
RUN_TIMEOUT_S = 3600.0


class BulkJob:
    """An async context manager: competes for leadership and, while leader, keeps the bulk folder up to date."""

    def __init__(self, settings: Settings, read_url: str) -> None:
        self.settings = settings
        self.read_url = read_url
        self.leader = False
        self.runs = 0
        self.lock = lock_key(settings.bulk_dir, "leader")  # one leader per folder
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BulkJob:
        if self.settings.open_bulk_job:
            self._task = asyncio.create_task(self._run(), name="open-data-bulk")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.read_url, timeout=10)
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock):
                    await self._lead(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("open data bulk job: %s", exc)
            finally:
                self.leader = False
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(LEADER_RETRY_S)

    async def _lead(self, lock: asyncpg.Connection) -> None:
        self.leader = True
        logger.info("open data bulk job: this process is the leader")
        while True:
            started = time.monotonic()
            await lock.fetchval("SELECT 1", timeout=5)  # a dead lock connection means we are no longer leader
            await self.write()
            await asyncio.sleep(max(1.0, self.settings.open_bulk_every_s - (time.monotonic() - started)))

    async def write(self) -> None:
        """``ioc opendata bulk`` in a child process, on the open data's read-only role."""
        s = self.settings
        env = {**os.environ, "IOC_OPEN_DATABASE_URL": self.read_url, "IOC_STATE_DIR": str(s.state_dir),
               "IOC_OPEN_BULK_DIR": str(s.bulk_dir), "IOC_OPEN_BULK_DAYS": str(s.open_bulk_days)}  # fmt: skip
        if s.open_data_file:
            env["IOC_OPEN_DATA_FILE"] = str(s.open_data_file)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ioc.cli", "opendata", "bulk",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(child.communicate(), RUN_TIMEOUT_S)
        except TimeoutError:
            logger.warning("open data bulk files took over %.0f s: stopped", RUN_TIMEOUT_S)
            return
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        self.runs += 1
        tail = out.decode(errors="replace").strip().splitlines()[-1:] if out else []
        if child.returncode == 0:
            logger.info("open data bulk files: %s", tail[0] if tail else "done")
        else:
            logger.warning("open data bulk files failed (exit %s): %s", child.returncode, tail[0] if tail else "")
