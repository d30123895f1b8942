"""``kill -USR1 <pid>`` of ``ioc serve``: log where every asyncio task is waiting (for a server that seems stuck)."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


def task_stacks() -> str:
    """Every task of the running loop with the frames it is suspended in."""
    out = io.StringIO()
    for task in sorted(asyncio.all_tasks(), key=lambda t: t.get_name()):
        out.write(f"--- task {task.get_name()} ({task.get_coro()!r})\n")
        task.print_stack(limit=12, file=out)
    return out.getvalue()


def _dump() -> None:
    logger.warning("asyncio tasks on SIGUSR1:\n%s", task_stacks())


@contextmanager
def stacks_on_sigusr1() -> Iterator[None]:
    """While the block runs, SIGUSR1 logs the stacks of every task."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, _dump)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
