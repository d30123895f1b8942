"""Deltas: what changed between two states of a channel, and one delta equivalent to two in a row.

A delta has the state's shape but only what changed. A list named in ``LIST_KEYS`` is a keyed list:
each of its objects is identified by that field, and the delta lists only changed or new items
(changed ones reduced to the key and the changed fields) and removed ones as ``{key: ..., "_removed":
true}``. Any other value (lists included) is sent whole when it differs.

``LIST_KEYS`` is the one definition of the keys: every snapshot carries it (``meta.keys``) and the
browser merges with it, so both sides always agree on which item a delta item updates.
"""

from __future__ import annotations

from typing import Any

# List name -> the field that identifies its items (wherever the list appears in a channel's state).
LIST_KEYS: dict[str, str] = {
    "alerts": "id",
    "events": "id",
    "devices": "device_id",
    "points": "device_id",
    "top": "device_id",
    "worst": "device_id",
    "zones": "zone_id",
    "incidents": "id",
    "escalations": "key",
}
REMOVED = "_removed"


class _Nothing:
    """Marker for 'no change' (distinct from a change to None)."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


def list_key(name: str, *lists: list[Any]) -> str | None:
    """The key of the list called ``name`` if it is a keyed list and every item carries it, else None."""
    key = LIST_KEYS.get(name)
    if key is None or not all(isinstance(i, dict) and key in i for items in lists for i in items):
        return None
    return key


def diff(old: Any, new: Any, name: str = "") -> Any:
    """What changed from ``old`` to ``new`` (a value called ``name`` in its parent); NOTHING when equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, Any] = {}
        for k, v in new.items():
            if k not in old:
                out[k] = v
                continue
            d = diff(old[k], v, k)
            if d is not NOTHING:
                out[k] = d
        for k in old.keys() - new.keys():
            out[k] = None
        return out if out else NOTHING
    if isinstance(old, list) and isinstance(new, list):
        key = list_key(name, old, new)
        if key is None:
            return NOTHING if old == new else new
        before = {i[key]: i for i in old}
        changed: list[Any] = []
        seen = set()
        for item in new:
            k = item[key]
            seen.add(k)
            if k not in before:
                changed.append(item)
                continue
            d = diff(before[k], item)
            if d is not NOTHING:
                changed.append({key: k, **d})
        changed.extend({key: k, REMOVED: True} for k in before if k not in seen)
        return changed if changed else NOTHING
    if type(old) is not type(new) and not (isinstance(old, int | float) and isinstance(new, int | float)):
        return new
    return NOTHING if old == new else new


def merge(first: Any, second: Any, name: str = "") -> Any:
    """One delta equivalent to applying ``first`` then ``second``."""
    if isinstance(first, dict) and isinstance(second, dict):
        if second.get(REMOVED):
            return second
        out = dict(first)
        for k, v in second.items():
            out[k] = merge(first[k], v, k) if k in first else v
        return out
    if isinstance(first, list) and isinstance(second, list):
        key = list_key(name, first, second)
        if key is None:
            return second
        items = {i[key]: i for i in first}
        for item in second:
            k = item[key]
            old = items.get(k)
            if old is None or item.get(REMOVED) or old.get(REMOVED):
                items[k] = item
            else:
                items[k] = merge(old, item)
        return list(items.values())
    return second
