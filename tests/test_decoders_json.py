"""The strict JSON parser's orjson fast path: taken for plain telemetry, and never accepts what the strict
parser refuses (duplicate keys, NaN, bad UTF-8, a BOM, too deep) nor parses anything differently."""

from __future__ import annotations

import pytest

from ingest.decoders import parsing
from ingest.decoders.parsing import DEFAULT_LIMITS, Limits, load_json
from ioc.errors import PayloadError

TELEMETRY = (
    b'{"ts":"2026-11-28T01:20:00.123456Z","seq":17,'
    b'"metrics":{"water_level_cm":12.5,"rainfall_mm_h":3.0,"battery_pct":88}}'
)
PAYLOADS = [
    TELEMETRY,
    b'{"a":1,"a":2}',  # duplicate key: orjson alone keeps the last
    b'{"m":{"x":1,"y":2,"x":3}}',  # duplicate key in a nested object
    b'{"a":"x","b":{"a":"x"}}',  # the same key in two objects is not a duplicate
    b'{"a":"a\\"b","a":1}',  # escapes go to the strict parser
    b'{"a" : 1, "a" : 2}',  # whitespace around the colon
    b'{":":1,"b":":"}',  # colons and quotes inside strings
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":1e400}',
    b'\xef\xbb\xbf{"a":1}',
    b'{"a":"\xff"}',
    b'{"a":"\x00"}',
    b'{"a":1} x',
    b"[" * 40 + b"]" * 40,
    b'[{"a":[{"b":[]}]}]',
    b'"just a string"',
    b"null",
    b"17",
    b"",
]


def outcome(payload: bytes, *, floats: bool, limits: Limits = DEFAULT_LIMITS) -> object:
    """The parsed document, or the reason and detail it was refused with."""
    try:
        return load_json(payload, limits, floats=floats)
    except PayloadError as exc:
        return (exc.reason, exc.detail)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p[:24].decode("utf-8", "replace"))
def test_fast_path_agrees_with_the_strict_parser(payload: bytes) -> None:
    """Every payload parses to the same document, or is refused with the same reason and detail."""
    assert outcome(payload, floats=True) == outcome(payload, floats=False)


def test_duplicate_keys_are_refused_on_the_fast_path() -> None:
    """orjson keeps the last duplicate; the quote count sends such a payload back to the strict parser."""
    with pytest.raises(PayloadError) as caught:
        load_json(b'{"ts":1,"metrics":{"x":1,"x":2}}', DEFAULT_LIMITS, floats=True)
    assert caught.value.reason == "duplicate_key"


def test_plain_telemetry_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain telemetry payload never reaches the slower strict parser (it would fail here if it did)."""

    class Refuse:
        def decode(self, text: str) -> object:
            raise AssertionError("the strict parser was used")

    monkeypatch.setattr(parsing, "_JSON", Refuse())
    assert load_json(TELEMETRY, DEFAULT_LIMITS, floats=True)["metrics"]["battery_pct"] == 88
    with pytest.raises(AssertionError):
        load_json(TELEMETRY, DEFAULT_LIMITS)


def test_depth_limit_holds_on_the_fast_path() -> None:
    """A document deeper than the limit is too_deep whichever parser read it."""
    limits = Limits(max_json_depth=3)
    assert outcome(b'{"a":{"b":{"c":{}}}}', floats=True, limits=limits)[0] == "too_deep"  # type: ignore[index]
