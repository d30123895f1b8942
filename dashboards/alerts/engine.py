"""The alert engine: exactly one leader across server processes evaluates the rules (``ioc.leader``).

The leader evaluates on a timer (``evaluate_every_s``: every rule and device, durations, stale devices)
and, between, on ingest notifications: then only the rules of the kinds committed since the last
round, for the devices committed and those whose timing is pending (a level held but not yet for
``for_s``, a clear delay running), which gives the same transitions at a fraction of the cost under
load. It marks silent devices ``stale`` and records every alert transition (which NOTIFYs ``ioc_alerts``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dashboards import air, metrics
from dashboards.alerts import store
from dashboards.alerts.observe import Observation, observe
from dashboards.alerts.rules import Rule, RuleBook
from dashboards.hub import Hub
from incidents.escalation import escalate_overdue
from incidents.grouping import group_alerts
from incidents.procedures import Catalogue
from ioc.db import NOTIFY_CHANNEL, commit_notices
from ioc.leader import LeaderJob
from ioc.settings import Settings

logger = logging.getLogger(__name__)

LOCK_KEY = 0x10C_A1E7  # pg advisory lock id of the alert engine leader
LEADER_RETRY_S = 2.0
MIN_GAP_S = 0.25  # at most this often on bursts of notifications
MIN_STALE_S = 15.0  # the ingest refreshes last_seen every few seconds: never call a device stale sooner
SEVERITY_RANK = {"warning": 1, "critical": 2}

MARK_STALE = """
UPDATE devices SET status = 'stale', status_since = now(), updated_at = now()
WHERE enabled AND status = 'online'
  AND last_seen < now() - make_interval(secs => greatest(interval_s * $1::float8, $2::float8))
RETURNING device_id, kind
"""


@dataclass
class Track:
    """In-memory timing of one (rule, device): since when each level holds, since when it is clear."""

    since: dict[str, float] = field(default_factory=dict)
    clear_since: float | None = None

    def pending(self, severity: str | None) -> bool:
        """True while time alone can move the alert (``severity``: its active alert's, None without one)."""
        if self.clear_since is not None:
            return severity is not None
        rank = SEVERITY_RANK.get(severity or "", 0)
        return any(SEVERITY_RANK[level] > rank for level in self.since)


@dataclass
class Changes:
    """What the ingest committed since the last round: kinds and devices."""

    kinds: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)


class AlertEngine:
    """Competes for leadership and, while leader, evaluates the rules (an async context manager)."""

    def __init__(self, pool: asyncpg.Pool, database_url: str, settings: Settings, hub: Hub | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.book = RuleBook(settings.alert_rules_file)
        self.procedures = Catalogue(settings.sop_dir)
        self.tracks: dict[tuple[str, str], Track] = {}
        self.changes = Changes()
        self._last_full = float("-inf")
        self.clock = time.monotonic  # the rounds' time (tests drive it)
        self.job = LeaderJob(
            "alert engine",
            database_url,
            LOCK_KEY,
            self.evaluate,
            interval=lambda: self.book.current.evaluate_every_s,
            retry_s=LEADER_RETRY_S,
            min_gap_s=MIN_GAP_S,
            on_lead=self._on_lead,
        )
        if hub is not None:
            hub.on_notification(self._notified)

    @property
    def leader(self) -> bool:
        """True while this process runs the engine."""
        return self.job.leader

    async def __aenter__(self) -> AlertEngine:
        self.book.refresh()
        await self.job.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.job.__aexit__(*exc)

    def _notified(self, channel: str, doc: dict[str, Any]) -> None:
        if channel == NOTIFY_CHANNEL and doc.get("w") != "alert-engine":
            self.changes.kinds.update(doc.get("kinds") or ())  # continued notices carry only devices
            self.changes.devices.update(doc.get("devices") or ())
            self.job.wake()

    def _on_lead(self, leader: bool) -> None:
        if leader:
            self.tracks.clear()  # timings start over: another process may have moved the alerts meanwhile
        metrics.ALERT_ENGINE_LEADER.set(1 if leader else 0)

    # ------------------------------------------------------------ evaluation

    async def evaluate(self) -> None:
        """One round: the full one when due (or the rules changed), else the one the notifications ask for."""
        now = self.clock()
        full = self.book.refresh() or now - self._last_full >= self.book.current.evaluate_every_s
        changes, self.changes = self.changes, Changes()
        if full:
            self._last_full = now
        metrics.ALERT_EVALUATIONS.inc()
        async with self.pool.acquire() as conn:
            await self._round(conn, None if full else changes, now)

    def _pending(self, active: dict[tuple[str, str], asyncpg.Record]) -> dict[str, set[str]]:
        """Per rule, the devices whose alert time alone can move."""
        out: dict[str, set[str]] = {}
        for key, track in self.tracks.items():
            alert = active.get(key)
            if track.pending(alert["severity"] if alert is not None else None):
                out.setdefault(key[0], set()).add(key[1])
        return out

    @staticmethod
    def _wanted(rule: Rule, changes: Changes, pending: set[str]) -> list[str] | None:
        """The devices a notified round looks at for ``rule`` (None: all of them; []: none)."""
        if rule.type in ("air_quality", "air_suspect"):  # zones, from a shared reading: all or nothing
            return None if air.KIND in changes.kinds else []
        if rule.kind is not None and rule.kind not in changes.kinds:
            return sorted(pending)
        return sorted(changes.devices | pending)

    async def _round(self, conn: asyncpg.Connection, changes: Changes | None, now: float) -> None:
        """Step the rules over the devices (``changes`` None: every rule and device, stale marking, grouping)."""
        if changes is None:
            await self.mark_stale(conn)
        rows = await conn.fetch("SELECT id, rule, device_id, severity, state FROM alerts WHERE state <> 'resolved'")
        active = {(r["rule"], r["device_id"]): r for r in rows}
        pending = {} if changes is None else self._pending(active)
        seen: set[tuple[str, str]] = set()
        moved = False
        for rule in self.book.current.rules:
            if not rule.enabled:
                continue
            only = None if changes is None else self._wanted(rule, changes, pending.get(rule.id, set()))
            if only == []:
                continue
            looked = None if only is None else set(only)
            observations = await observe(
                conn, rule, {d: a["severity"] for (r, d), a in active.items() if r == rule.id}, only
            )
            devices = set(observations) | {d for (r, d) in active if r == rule.id and (looked is None or d in looked)}
            for device_id in devices:
                key = (rule.id, device_id)
                seen.add(key)
                moved |= await self._step(conn, rule, device_id, observations.get(device_id), active.get(key), now)
        if changes is None or moved:
            try:
                await self.procedures.sync(conn)  # editions saved in the browser since the last round
                await group_alerts(conn, self.procedures)  # new and escalated alerts into incidents
                await escalate_overdue(conn)  # incidents past their time limits
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                raise
            except Exception:  # a bug in grouping must not stop the alerts themselves
                logger.exception("grouping alerts into incidents failed")
        if changes is None:
            for key in set(self.tracks) - seen:
                del self.tracks[key]

    async def _step(
        self,
        conn: asyncpg.Connection,
        rule: Rule,
        device_id: str,
        obs: Observation | None,
        alert: asyncpg.Record | None,
        now: float,
    ) -> bool:
        """One round of a rule for a device: open, escalate or resolve its alert once a level has held.

        True when the alert moved."""
        key = (rule.id, device_id)
        level = obs.level if obs is not None else None
        track = self.tracks.setdefault(key, Track())
        if level is None:
            return await self._clear(conn, rule, key, track, obs, alert, now)
        track.clear_since = None
        if level == "hold":  # inside the hysteresis band: neither clearing nor rising
            track.since.pop("critical", None)
            return False
        track.since.setdefault("warning", now)
        if level == "critical":
            track.since.setdefault("critical", now)
        else:
            track.since.pop("critical", None)
        held = [lv for lv in ("critical", "warning") if lv in track.since and now - track.since[lv] >= rule.for_s]
        if not held:
            return False
        assert obs is not None and obs.device is not None
        target = held[0]
        if alert is None:
            title = rule.title.format_map(
                _Fields(rule=rule.id, name=obs.device["name"], zone=obs.device["zone"] or "", device_id=device_id)
            )
            return (
                await store.open_alert(
                    conn,
                    rule=rule.id,
                    device_id=device_id,
                    zone=obs.device["zone"],
                    severity=target,
                    title=title,
                    message=obs.message,
                    value=obs.value,
                )
                is not None
            )
        if SEVERITY_RANK[target] > SEVERITY_RANK.get(alert["severity"], 0):
            return await store.escalate(conn, alert["id"], target, obs.message, obs.value)
        return False

    async def _clear(
        self,
        conn: asyncpg.Connection,
        rule: Rule,
        key: tuple[str, str],
        track: Track,
        obs: Observation | None,
        alert: asyncpg.Record | None,
        now: float,
    ) -> bool:
        """The condition is clear: resolve the open alert once it has stayed clear for the rule's clear delay."""
        track.since.clear()
        if alert is None:
            self.tracks.pop(key, None)
            return False
        if track.clear_since is None:
            track.clear_since = now
        # A clear condition with a note was superseded (a forecast came true: the reading's alert took
        # over), so it resolves at once rather than after the clear delay.
        if now - track.clear_since >= rule.clear_delay_s or (obs is not None and obs.note):
            await store.resolve(
                conn,
                alert["id"],
                store.ENGINE,
                (obs.note if obs is not None else None) or "condition cleared",
                obs.value if obs is not None else None,
            )
            self.tracks.pop(key, None)
            return True
        return False

    async def mark_stale(self, conn: asyncpg.Connection) -> list[str]:
        """Mark online devices silent for too long as ``stale`` and tell the hubs."""
        rows = await conn.fetch(MARK_STALE, self.settings.stale_after_intervals, MIN_STALE_S)
        if rows:
            ids = sorted(r["device_id"] for r in rows)
            logger.info("marked %d devices stale: %s", len(ids), ", ".join(ids[:20]))
            head: dict[str, Any] = {
                "w": "alert-engine",
                "t": datetime.now(UTC).isoformat(),
                "rows": 0,
                "events": 0,
                "status": len(ids),
                "kinds": sorted({r["kind"] for r in rows}),
            }
            for notice in commit_notices(head, ids):
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, notice)
        return [r["device_id"] for r in rows]


class _Fields(dict[str, str]):
    """Template fields for alert titles; an unknown ``{field}`` stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"
