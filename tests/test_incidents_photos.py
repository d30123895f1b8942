"""incidents.photos: a field photo's type comes from its bytes, its metadata (EXIF location, text chunks) is taken
out, orientation kept; anything that is not a whole JPEG or PNG is refused with a reason. Pure functions."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from incidents.photos import JPEG, PNG, PhotoError, clean, sniff
from tests.support.pictures import GPS_IFD, ORIENTATION, jpeg_with_exif, png_with_text

LIMIT = 1024 * 1024


def test_a_jpeg_loses_its_location_and_maker_but_keeps_its_orientation_and_picture() -> None:
    raw = jpeg_with_exif()
    assert b"PhoneMaker" in raw and b"secret comment" in raw
    kind, cleaned = clean(raw, LIMIT)
    assert kind == JPEG
    assert b"PhoneMaker" not in cleaned and b"secret comment" not in cleaned
    opened = Image.open(io.BytesIO(cleaned))
    exif = opened.getexif()
    assert dict(exif) == {ORIENTATION: 6}  # nothing but the orientation
    assert exif.get_ifd(GPS_IFD) == {}
    assert opened.size == (40, 20)
    opened.load()  # the picture still decodes
    assert Image.open(io.BytesIO(raw)).getpixel((5, 5)) == opened.getpixel((5, 5))


def test_a_jpeg_without_orientation_gets_no_exif_at_all() -> None:
    _, cleaned = clean(jpeg_with_exif(orientation=1), LIMIT)
    assert b"Exif" not in cleaned
    assert dict(Image.open(io.BytesIO(cleaned)).getexif()) == {}


def test_a_png_loses_its_text_chunks() -> None:
    raw = png_with_text()
    kind, cleaned = clean(raw, LIMIT)
    assert kind == PNG and b"Location" in raw and b"Location" not in cleaned
    assert Image.open(io.BytesIO(cleaned)).getpixel((1, 1)) == (0, 200, 0)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GIF89a" + b"\x00" * 100, "not_an_image"),
        (b"<html><script>alert(1)</script></html>", "not_an_image"),
        (b"", "not_an_image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "corrupt"),  # cut short
        (b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00", "corrupt"),  # a segment longer than the file
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "corrupt"),  # no IEND
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00IEND\xaeB`\x82", "corrupt"),  # IHDR is not first
    ],
)
def test_what_is_not_a_whole_jpeg_or_png_is_refused_with_its_reason(data: bytes, code: str) -> None:
    with pytest.raises(PhotoError) as refused:
        clean(data, LIMIT)
    assert refused.value.code == code


def test_the_type_comes_from_the_bytes_and_the_size_is_limited() -> None:
    assert sniff(png_with_text()) == PNG and sniff(jpeg_with_exif()) == JPEG
    raw = jpeg_with_exif()
    with pytest.raises(PhotoError) as refused:
        clean(raw, len(raw) - 1)
    assert refused.value.code == "too_large" and f"limit is {len(raw) - 1:,}" in str(refused.value)
