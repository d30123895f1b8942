"""The bulk files' job in ``ioc serve``: one leader among the servers sharing a bulk folder runs ``ioc opendata
bulk`` every ``IOC_OPEN_BULK_EVERY_S`` (it writes only the days that are missing, so most runs take a moment).
``IOC_OPEN_BULK_JOB=false`` turns it off (files written by a cron'd ``ioc opendata bulk`` are served as well).

Leadership is a PostgreSQL advisory lock (keyed by the folder) on a dedicated connection. The files are
written by a child process, so the CSV and Parquet work (and pyarrow's memory) never sit in the server.
"""

from __future__ import annotations

import logging
import os

from ioc.leader import LeaderJob
from ioc.processes import run_ioc_command
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
        self.runs = 0
        self.job = LeaderJob(
            "open data bulk job",
            read_url,
            lock_key(settings.bulk_dir, "leader"),  # one leader per folder
            self.write,
            interval=lambda: settings.open_bulk_every_s,
            retry_s=LEADER_RETRY_S,
            min_gap_s=1.0,
        )

    @property
    def leader(self) -> bool:
        """Whether this process writes the bulk files now."""
        return self.job.leader

    async def __aenter__(self) -> BulkJob:
        if self.settings.open_bulk_job:
            await self.job.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.job.__aexit__(*exc)

    async def write(self) -> None:
        """``ioc opendata bulk`` in a child process, on the open data's read-only role."""
        s = self.settings
        env = {**os.environ, "IOC_OPEN_DATABASE_URL": self.read_url, "IOC_STATE_DIR": str(s.state_dir),
               "IOC_OPEN_BULK_DIR": str(s.bulk_dir), "IOC_OPEN_BULK_DAYS": str(s.open_bulk_days)}  # fmt: skip
        if s.open_data_file:
            env["IOC_OPEN_DATA_FILE"] = str(s.open_data_file)
        if await run_ioc_command("open data bulk files", ["opendata", "bulk"], env, RUN_TIMEOUT_S) is not None:
            self.runs += 1
