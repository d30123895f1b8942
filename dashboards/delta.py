"""Deltas between two states of a channel, and how to merge and apply them.

A delta has the state's shape but only what changed. Lists of objects that carry a key
(``id``, ``device_id``, ``zone_id``) are compared item by item: the delta lists only changed or new
items (changed ones reduced to the key and the changed fields) and removed ones as
``{key: ..., "_removed": true}``. Any other value is sent whole when it differs.
"""

from __future__ import annotations

from typing import Any

LIST_KEYS = ("id", "device_id", "zone_id")
REMOVED = "_removed"


class _Nothing:
    """Marker for 'no change' (distinct from a change to None)."""

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


def list_key(items: list[Any]) -> str | None:
    """The key field shared by every item of a list of objects, or None if it is not such a list."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in LIST_KEYS:
        if all(key in i for i in items):
            return key
    return None


def diff(old: Any, new: Any) -> Any:
    """What changed from ``old`` to ``new``; NOTHING when they are equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, Any] = {}
        for k, v in new.items():
            if k not in old:
                out[k] = v
                continue
            d = diff(old[k], v)
            if d is not NOTHING:
                out[k] = d
        for k in old.keys() - new.keys():
            out[k] = None
        return out if out else NOTHING
    if isinstance(old, list) and isinstance(new, list):
        key = list_key(new) if new else list_key(old)
        if key is None or (old and list_key(old) != key):
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


def merge(first: Any, second: Any) -> Any:
    """One delta equivalent to applying ``first`` then ``second``."""
    if isinstance(first, dict) and isinstance(second, dict):
        if second.get(REMOVED):
            return second
        out = dict(first)
        for k, v in second.items():
            out[k] = merge(first[k], v) if k in first else v
        return out
    if isinstance(first, list) and isinstance(second, list):
        key = list_key(first + second)
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


def apply(state: Any, delta: Any) -> Any:
    """The state after ``delta`` (what a client does with each delta message)."""
    if isinstance(state, dict) and isinstance(delta, dict):
        out = dict(state)
        for k, v in delta.items():
            out[k] = apply(state[k], v) if k in state else v
        return out
    if isinstance(state, list) and isinstance(delta, list):
        key = list_key(state + delta)
        if key is None:
            return delta
        items = {i[key]: i for i in state}
        for item in delta:
            k = item[key]
            if item.get(REMOVED):
                items.pop(k, None)
            elif k in items:
                items[k] = apply(items[k], item)
            else:
                items[k] = item
        return list(items.values())
    return delta
