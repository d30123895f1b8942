"""AckSequencer: batches committed by concurrent writers are acknowledged in the order they were received."""

from __future__ import annotations

import asyncio

from ingest.acks import AckSequencer
from ioc.records import RawMessage


def batch(n: int) -> list[RawMessage]:
    return [RawMessage("t", b"", float(n), mid=n)]


async def test_acks_follow_receive_order_whichever_writer_finishes_first() -> None:
    acked: list[int] = []
    acks = AckSequencer(lambda raws: acked.extend(m.mid for m in raws))
    seqs = [acks.number() for _ in range(4)]
    assert seqs == [0, 1, 2, 3]
    await acks.complete(2, batch(2))
    await acks.complete(1, batch(1))
    assert acked == []  # batch 0 is still being written
    await acks.complete(0, batch(0))
    assert acked == [0, 1, 2]
    await acks.complete(3, batch(3))
    assert acked == [0, 1, 2, 3]


async def test_turn_waits_for_every_earlier_batch() -> None:
    """A writer spooling batch 2 waits until 0 and 1 are committed or spooled: the spool stays in order."""
    acks = AckSequencer(lambda raws: None)
    for _ in range(3):
        acks.number()
    waiting = asyncio.create_task(acks.turn(2))
    await acks.complete(1, batch(1))
    await asyncio.sleep(0)
    assert not waiting.done()
    await acks.complete(0, batch(0))
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(acks.turn(0), 1)  # an earlier turn returns at once
