"""A bounded on-disk spool of raw messages, used while the database is unreachable.

Messages are appended in arrival order to segment files and fsynced before the broker is acked;
when the database returns they are replayed in the same order through the same decode path.
Record format: ``>dHI`` (received_at, topic length, payload length), topic bytes, payload bytes.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from ioc.records import RawMessage

logger = logging.getLogger(__name__)

HEADER = struct.Struct(">dHI")
SEGMENT_BYTES = 16 * 1024 * 1024


class SpoolFull(Exception):
    """The spool reached its size limit: stop consuming so the broker keeps the messages."""


class Spool:
    """Append-only segments in ``directory``; ``depth_bytes`` is what awaits replay."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._sealed: set[Path] = set()  # segments being replayed: appends go to a new one
        self._recover()

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("segment-*.spool"))

    def _recover(self) -> None:
        """Truncate a torn tail left by a crash in the middle of an append."""
        for seg in self._segments():
            good = 0
            with open(seg, "rb") as f:
                data = f.read()
            while good + HEADER.size <= len(data):
                _, tlen, plen = HEADER.unpack_from(data, good)
                end = good + HEADER.size + tlen + plen
                if end > len(data):
                    break
                good = end
            if good != len(data):
                logger.warning("spool segment %s had a torn tail: truncated %d bytes", seg.name, len(data) - good)
                with open(seg, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())

    @property
    def depth_bytes(self) -> int:
        """Bytes waiting for replay."""
        return sum(p.stat().st_size for p in self._segments())

    def __bool__(self) -> bool:
        return any(p.stat().st_size for p in self._segments())

    def append(self, messages: Iterable[RawMessage]) -> int:
        """Append and fsync; return bytes written. Raises SpoolFull before writing past the limit."""
        chunks = []
        for m in messages:
            topic = m.topic.encode()
            chunks += [HEADER.pack(m.received_at, len(topic), len(m.payload)), topic, m.payload]
        blob = b"".join(chunks)
        if self.depth_bytes + len(blob) > self.max_bytes:
            raise SpoolFull(f"spool at {self.directory} would exceed {self.max_bytes} bytes")
        segments = self._segments()
        reuse = segments and segments[-1] not in self._sealed and segments[-1].stat().st_size < SEGMENT_BYTES
        seg = segments[-1] if reuse else self._new_segment(segments)
        with open(seg, "ab") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        return len(blob)

    def _new_segment(self, segments: list[Path]) -> Path:
        n = int(segments[-1].stem.split("-")[1]) + 1 if segments else 1
        path = self.directory / f"segment-{n:010d}.spool"
        path.touch()
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)  # make the new file's directory entry durable
        finally:
            os.close(fd)
        return path

    def oldest(self) -> tuple[Path, list[RawMessage]] | None:
        """The oldest segment and its messages, or None when the spool is empty."""
        for seg in self._segments():
            messages = list(read_segment(seg))
            if messages:
                self._sealed.add(seg)
                return seg, messages
            seg.unlink()
        return None

    def remove(self, segment: Path) -> None:
        """Delete a segment after its messages are committed."""
        segment.unlink(missing_ok=True)
        self._sealed.discard(segment)


def read_segment(path: Path) -> Iterator[RawMessage]:
    """Messages of one segment file, in order."""
    data = path.read_bytes()
    pos = 0
    while pos + HEADER.size <= len(data):
        received_at, tlen, plen = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        if pos + tlen + plen > len(data):  # a torn tail (cut off when the spool opens): not a message
            return
        topic = data[pos : pos + tlen].decode()
        pos += tlen
        yield RawMessage(topic, data[pos : pos + plen], received_at)
        pos += plen
