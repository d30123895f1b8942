"""The on-disk spool (ingest.spool): order kept, bounded, and a torn tail left by a crash cut off on open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest import spool as spool_module
from ingest.spool import HEADER, Spool, SpoolFull, read_segment
from ioc.records import RawMessage

MiB = 1024 * 1024


def messages(n: int, start: int = 0, size: int = 10) -> list[RawMessage]:
    return [
        RawMessage(f"ioc/v1/flood/FL-{i}/telemetry", bytes([i % 256]) * size, 1_800_000_000.0 + i)
        for i in range(start, start + n)
    ]


def replay(spool: Spool) -> list[RawMessage]:
    """Everything in the spool, oldest segment first, removing each as a writer does after its commit."""
    out: list[RawMessage] = []
    while (oldest := spool.oldest()) is not None:
        segment, batch = oldest
        out += batch
        spool.remove(segment)
    return out


def test_messages_come_back_in_order_with_their_bytes_and_times(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MiB)
    assert not spool and spool.depth_bytes == 0
    sent = messages(3) + [RawMessage("legacy/flood/FL-Q7-003", b"", 1.5), RawMessage("t/\u00e9", b"\x00\xff", 2.0)]
    written = spool.append(sent[:3]) + spool.append(sent[3:])
    assert spool and spool.depth_bytes == written
    assert [(m.topic, m.payload, m.received_at) for m in replay(spool)] == [
        (m.topic, m.payload, m.received_at) for m in sent
    ]
    assert not spool and spool.depth_bytes == 0


def test_appends_during_a_replay_go_to_a_new_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MiB)
    spool.append(messages(2))
    segment, first = spool.oldest()  # type: ignore[misc]
    spool.append(messages(2, start=2))  # the database is away again while the first segment replays
    spool.remove(segment)
    assert [m.received_at for m in first + replay(spool)] == [m.received_at for m in messages(4)]


def test_a_full_spool_refuses_before_writing(tmp_path: Path) -> None:
    spool = Spool(tmp_path, MiB)
    big = messages(1, size=MiB // 2)
    spool.append(big)
    depth = spool.depth_bytes
    with pytest.raises(SpoolFull):
        spool.append(big)
    assert spool.depth_bytes == depth  # nothing half-written
    spool.remove(spool.oldest()[0])  # type: ignore[index]
    spool.append(big)  # room again once replayed


def test_segments_roll_over_at_their_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 200)
    spool = Spool(tmp_path, MiB)
    for i in range(5):
        spool.append(messages(2, start=2 * i, size=60))
    assert len(list(tmp_path.glob("segment-*.spool"))) > 1
    assert [m.received_at for m in replay(spool)] == [m.received_at for m in messages(10)]


@pytest.mark.parametrize("cut", [1, HEADER.size - 1, HEADER.size + 3, -1])
def test_a_torn_tail_is_cut_off_when_the_spool_opens(tmp_path: Path, cut: int) -> None:
    """A crash in the middle of an append leaves a partial record: the next start keeps every whole one."""
    Spool(tmp_path, MiB).append(messages(3))
    (segment,) = tmp_path.glob("segment-*.spool")
    whole = segment.stat().st_size
    topic = b"ioc/v1/flood/X/telemetry"
    record = HEADER.pack(9.0, len(topic), 4) + topic + b"abcd"
    with open(segment, "ab") as f:
        f.write(record[:cut])  # a prefix of the record, never all of it
        os.fsync(f.fileno())
    assert segment.stat().st_size > whole
    reopened = Spool(tmp_path, MiB)
    assert segment.stat().st_size == whole
    assert [m.received_at for m in replay(reopened)] == [m.received_at for m in messages(3)]


def test_a_partial_record_is_never_read_as_a_message(tmp_path: Path) -> None:
    path = tmp_path / "segment-0000000001.spool"
    whole = HEADER.pack(1.0, 5, 2) + b"topic" + b"ok"
    path.write_bytes(whole + HEADER.pack(2.0, 5, 100) + b"topic" + b"short")
    assert [(m.topic, m.payload) for m in read_segment(path)] == [("topic", b"ok")]
