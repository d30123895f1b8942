"""Pictures for the incident tests: a plain JPEG, a phone-like JPEG with EXIF, a PNG with a text chunk."""

from __future__ import annotations

import io

from PIL import Image
from PIL.PngImagePlugin import PngInfo

GPS_IFD, ORIENTATION, MAKE = 0x8825, 0x0112, 0x010F


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (32, 18)) -> bytes:
    """A small JPEG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def jpeg_with_exif(orientation: int = 6) -> bytes:
    """A phone-like JPEG: EXIF with a GPS position, the phone's make and an orientation, plus a comment."""
    image = Image.new("RGB", (40, 20), (10, 120, 200))
    exif = Image.Exif()
    exif[MAKE] = "PhoneMaker X1 serial 123456"
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (10.0, 57.0, 0.0), 3: "E", 4: (106.0, 57.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=b"secret comment")
    return out.getvalue()


def png_with_text() -> bytes:
    """A PNG carrying a text chunk (e.g. a location written by an app)."""
    info = PngInfo()
    info.add_text("Location", "10.95N 106.95E")
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 200, 0)).save(out, "PNG", pnginfo=info)
    return out.getvalue()
