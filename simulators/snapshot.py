"""Camera stills: a small JPEG of a schematic street scene with the camera's name and local time."""

from __future__ import annotations

import io
import random
from datetime import datetime
from functools import lru_cache

try:
    from PIL import Image, ImageDraw, ImageFont
except ImportError as exc:  # Pillow is the [sim] extra: a deployment without simulators does not need it
    raise ImportError("the simulators need Pillow: install the [sim] extra (pip install 'ioc[sim]')") from exc

from simulators.models.geo import LOCAL_TZ

FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WIDTH, HEIGHT = 320, 180
VEHICLE_COLOURS = ((200, 40, 40), (30, 90, 200), (230, 200, 40), (240, 240, 240), (40, 40, 40), (60, 160, 80))


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT_PATH, size)
    except OSError:
        return ImageFont.load_default()


def render(
    name: str,
    when: datetime,
    vehicles: int,
    flooded_cm: float,
    label: str,
    rng: random.Random,
    quality: int = 70,
) -> bytes:
    """A JPEG still (about 10 KiB) of a road with ``vehicles`` and, if flooded, brown water over it."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (135, 180, 215))
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, 60, WIDTH, HEIGHT), fill=(95, 140, 80))
    draw.polygon(((120, 60), (200, 60), (WIDTH, HEIGHT), (0, HEIGHT)), fill=(70, 70, 75))
    for mark in range(70, HEIGHT, 22):
        draw.line((160, mark, 160, mark + 10), fill=(235, 235, 235), width=2)
    for _ in range(min(vehicles, 40)):
        y = rng.uniform(64, HEIGHT - 12)
        half_road = 40 + (y - 60) * (160 - 40) / (HEIGHT - 60)
        x = 160 + rng.uniform(-half_road, half_road - 8.0)
        scale = 0.4 + (y - 60) / (HEIGHT - 60)
        w, h = (6 + 10 * rng.random()) * scale, 8 * scale
        draw.rectangle((x, y, x + w, y + h), fill=rng.choice(VEHICLE_COLOURS))
    if flooded_cm > 0:
        top = max(62, HEIGHT - int(flooded_cm * 2))
        draw.rectangle((0, top, WIDTH, HEIGHT), fill=(120, 95, 60, min(200, 80 + int(flooded_cm * 3))))
    local = when.astimezone(LOCAL_TZ)
    draw.rectangle((0, 0, WIDTH, 34), fill=(0, 0, 0, 150))
    draw.text((6, 2), name, fill=(255, 255, 255), font=_font(12))
    draw.text((6, 18), f"{local:%Y-%m-%d %H:%M:%S} (UTC+7)  {label}", fill=(255, 220, 120), font=_font(11))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
