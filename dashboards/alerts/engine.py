"""The alert engine: exactly one leader across server processes evaluates the rules (``ioc.leader``).

The leader evaluates on ingest notifications and on a timer (durations, stale devices), marks
silent devices ``stale``, and records every alert transition (which NOTIFYs ``ioc_alerts``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from dashboards import metrics
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


class AlertEngine:
    """Competes for leadership and, while leader, evaluates the rules (an async context manager)."""

    def __init__(self, pool: asyncpg.Pool, database_url: str, settings: Settings, hub: Hub | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.book = RuleBook(settings.alert_rules_file)
        self.procedures = Catalogue(settings.sop_dir)
        self.tracks: dict[tuple[str, str], Track] = {}
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
            self.job.wake()

    def _on_lead(self, leader: bool) -> None:
        if leader:
            self.tracks.clear()  # timings start over: another process may have moved the alerts meanwhile
        metrics.ALERT_ENGINE_LEADER.set(1 if leader else 0)

    # ------------------------------------------------------------ evaluation

    async def evaluate(self) -> None:
        """One round: reload rules if changed, mark stale devices, step every (rule, device)."""
        self.book.refresh()
        metrics.ALERT_EVALUATIONS.inc()
        now = time.monotonic()
        async with self.pool.acquire() as conn:
            await self.mark_stale(conn)
            rows = await conn.fetch("SELECT id, rule, device_id, severity, state FROM alerts WHERE state <> 'resolved'")
            active = {(r["rule"], r["device_id"]): r for r in rows}
            seen: set[tuple[str, str]] = set()
            for rule in self.book.current.rules:
                if not rule.enabled:
                    continue
                observations = await observe(
                    conn, rule, {d: a["severity"] for (r, d), a in active.items() if r == rule.id}
                )
                devices = set(observations) | {d for (r, d) in active if r == rule.id}
                for device_id in devices:
                    key = (rule.id, device_id)
                    seen.add(key)
                    await self._step(conn, rule, device_id, observations.get(device_id), active.get(key), now)
            try:
                await self.procedures.sync(conn)  # editions saved in the browser since the last round
                await group_alerts(conn, self.procedures)  # new and escalated alerts into incidents
                await escalate_overdue(conn)  # incidents past their time limits
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                raise
            except Exception:  # a bug in grouping must not stop the alerts themselves
                logger.exception("grouping alerts into incidents failed")
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
    ) -> None:
        """One round of a rule for a device: open, escalate or resolve its alert once a level has held."""
        key = (rule.id, device_id)
        level = obs.level if obs is not None else None
        track = self.tracks.setdefault(key, Track())
        if level is None:
            await self._clear(conn, rule, key, track, obs, alert, now)
            return
        track.clear_since = None
        if level == "hold":  # inside the hysteresis band: neither clearing nor rising
            track.since.pop("critical", None)
            return
        track.since.setdefault("warning", now)
        if level == "critical":
            track.since.setdefault("critical", now)
        else:
            track.since.pop("critical", None)
        held = [lv for lv in ("critical", "warning") if lv in track.since and now - track.since[lv] >= rule.for_s]
        if not held:
            return
        assert obs is not None and obs.device is not None
        target = held[0]
        if alert is None:
            title = rule.title.format_map(
                _Fields(rule=rule.id, name=obs.device["name"], zone=obs.device["zone"] or "", device_id=device_id)
            )
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
        elif SEVERITY_RANK[target] > SEVERITY_RANK.get(alert["severity"], 0):
            await store.escalate(conn, alert["id"], target, obs.message, obs.value)

    async def _clear(
        self,
        conn: asyncpg.Connection,
        rule: Rule,
        key: tuple[str, str],
        track: Track,
        obs: Observation | None,
        alert: asyncpg.Record | None,
        now: float,
    ) -> None:
        """The condition is clear: resolve the open alert once it has stayed clear for the rule's clear delay."""
        track.since.clear()
        if alert is None:
            self.tracks.pop(key, None)
            return
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
