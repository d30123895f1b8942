"""Pictures from the field: the type read from the bytes (never from a header), metadata taken out.

A phone's JPEG carries EXIF (where it was taken, the phone's serial, a thumbnail of the uncropped picture)
and XMP; a PNG may carry text chunks. ``clean`` keeps the picture and drops all of that, except a JPEG's
orientation (one EXIF tag, rewritten alone), without which a portrait photo would show on its side. It
parses the container only (markers, chunks), never decodes pixels: pure functions, no image library.
"""

from __future__ import annotations

import struct

JPEG, PNG = "image/jpeg", "image/png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG segments dropped: APP1 (EXIF, XMP), APP12-APP15 (vendor, IPTC/Photoshop), COM (comments).
DROPPED_MARKERS = {0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xFE}
# PNG chunks dropped: text, EXIF and modification time.
DROPPED_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}
ORIENTATION_TAG = 0x0112


class PhotoError(ValueError):
    """A picture we do not take; ``code`` says why (``too_large``, ``not_an_image``, ``corrupt``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sniff(data: bytes) -> str:
    """The picture's type from its first bytes: JPEG or PNG, else ``PhotoError(not_an_image)``."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(PNG_SIGNATURE):
        return PNG
    raise PhotoError("not_an_image", "only JPEG and PNG pictures are accepted (the file's bytes are neither)")


def clean(data: bytes, max_bytes: int) -> tuple[str, bytes]:
    """``(content type, the picture without its metadata)``; ``PhotoError`` for anything else."""
    if len(data) > max_bytes:
        raise PhotoError("too_large", f"the picture is {len(data):,} bytes; the limit is {max_bytes:,}")
    kind = sniff(data)
    return kind, (_clean_jpeg(data) if kind == JPEG else _clean_png(data))


def _orientation(exif: bytes) -> int | None:
    """The orientation tag (1..8) of an APP1 EXIF payload (after ``Exif\\0\\0``), None when absent or unreadable."""
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return None
    order = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for i in range(min(count, 512)):
            tag, kind, _n, value = struct.unpack_from(order + "HHI4s", exif, ifd + 2 + 12 * i)
            if tag == ORIENTATION_TAG and kind == 3:
                (found,) = struct.unpack_from(order + "H", value, 0)
                return found if 1 <= found <= 8 else None
    except struct.error:
        return None
    return None


def _orientation_segment(orientation: int) -> bytes:
    """An APP1 segment holding nothing but the orientation."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHI", ORIENTATION_TAG, 3, 1) + struct.pack(">HH", orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _clean_jpeg(data: bytes) -> bytes:
    out = [data[:2]]
    orientation: int | None = None
    at = 2
    while True:
        if at + 4 > len(data) or data[at] != 0xFF:
            raise PhotoError("corrupt", "the JPEG is damaged or cut short (no image data found)")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            out.append(data[at : at + 2])
            at += 2
            continue
        (length,) = struct.unpack_from(">H", data, at + 2)
        end = at + 2 + length
        if length < 2 or end > len(data):
            raise PhotoError("corrupt", "the JPEG is damaged or cut short (a segment runs past its end)")
        if marker == 0xE1 and data[at + 4 : at + 10] == b"Exif\x00\x00" and orientation is None:
            orientation = _orientation(data[at + 10 : end])
        if marker not in DROPPED_MARKERS:
            out.append(data[at:end])
        at = end
        if marker == 0xDA:  # start of scan: the compressed picture follows, to the end
            out.append(data[at:])
            break
    if orientation and orientation != 1:
        out.insert(1, _orientation_segment(orientation))
    return b"".join(out)


def _clean_png(data: bytes) -> bytes:
    out = [PNG_SIGNATURE]
    at = len(PNG_SIGNATURE)
    first = True
    while True:
        if at + 12 > len(data):
            raise PhotoError("corrupt", "the PNG is damaged or cut short (no IEND chunk)")
        (length,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4 : at + 8]
        end = at + 12 + length
        if end > len(data) or (first and kind != b"IHDR"):
            raise PhotoError("corrupt", "the PNG is damaged (a chunk runs past its end, or IHDR is not first)")
        first = False
        if kind not in DROPPED_CHUNKS:
            out.append(data[at:end])
        at = end
        if kind == b"IEND":
            return b"".join(out)
