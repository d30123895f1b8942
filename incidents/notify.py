"""Telling field teams: an outbox in the database, delivered by every server with retries and a dead letter.

A change that must reach a team (an incident assigned to it, escalated while it holds it) adds rows to
``notifications`` in the same transaction as the change, one per channel the team has: a webhook (a JSON
POST signed with HMAC-SHA256 of ``timestamp.body`` under the team's secret) and/or an e-mail. ``Deliverer``
sends due rows; several servers share the work (``FOR UPDATE SKIP LOCKED``). A failed attempt is retried
after ``backoff * 2^(attempt-1)`` (at most an hour); after the last attempt the row is ``dead``, which
admins see through ``GET /api/v1/notifications?state=dead``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from ioc.background import Background
from ioc.backoff import delay

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-IOC-Signature"
TIMESTAMP_HEADER = "X-IOC-Timestamp"
DELIVERY_HEADER = "X-IOC-Delivery"
TIMEOUT_S = 10.0
POLL_S = 1.0
MAX_BACKOFF_S = 3600.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature: ``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def backoff_s(base: float, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failures."""
    return delay(attempts, base, MAX_BACKOFF_S)


async def enqueue(
    conn: asyncpg.Connection, incident_id: int, team_id: str, event: str, extra: dict[str, Any] | None = None
) -> int:
    """Queue ``event`` about the incident for each channel of an enabled team (call inside the change's
    transaction), with ``extra`` fields in the message (the field link); returns how many were queued."""
    team = await conn.fetchrow("SELECT * FROM field_teams WHERE team_id = $1 AND enabled", team_id)
    if team is None:
        return 0
    incident = await conn.fetchrow(
        "SELECT id, type, title, severity, state, lat, lon, zone, assignee, team, created_at "
        "FROM incidents WHERE id = $1",
        incident_id,
    )
    payload = {
        "event": event,
        "time": datetime.now(UTC).isoformat(),
        "team": team_id,
        "incident": {**dict(incident), "created_at": incident["created_at"].isoformat()},
        **(extra or {}),
    }
    targets = [("webhook", team["webhook_url"]), ("email", team["email"])]
    queued = 0
    for channel, target in targets:
        if target:
            await conn.execute(
                "INSERT INTO notifications (incident_id, team_id, channel, target, event, payload) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                incident_id,
                team_id,
                channel,
                target,
                event,
                payload,
            )
            queued += 1
    return queued


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:  # noqa: S310
            resp.read(1024)
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code}") from exc


def _mail(smtp_url: str, sender: str, to: str, subject: str, text: str) -> None:
    parts = urlsplit(smtp_url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise OSError("IOC_SMTP_URL is not set (smtp://host:port)")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(text)
    with smtplib.SMTP(parts.hostname, parts.port or 25, timeout=TIMEOUT_S) as smtp:
        smtp.send_message(message)


def _mail_text(payload: dict[str, Any]) -> str:
    """An e-mail's text: the field link first (when there is one), then the message as JSON."""
    head = ""
    if payload.get("field_link"):
        head = (
            f"Mở trên điện thoại / Open on your phone: {payload['field_link']}\n"
            f"(hết hạn / expires {payload.get('field_link_expires_at', '')})\n\n"
        )
    return head + json.dumps(payload, ensure_ascii=False, indent=2)


class Deliverer(Background):
    """Sends due notifications until stopped (an async context manager owning one task)."""

    def __init__(self, pool: asyncpg.Pool, *, smtp_url: str, sender: str, max_attempts: int, backoff: float) -> None:
        self.pool = pool
        self.smtp_url = smtp_url
        self.sender = sender
        self.max_attempts = max_attempts
        self.backoff = backoff

    task_name = "notification-deliverer"

    async def run(self) -> None:
        """Deliver what is due, then wait for more."""
        while True:
            try:
                sent = await self.deliver_due()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                logger.warning("notification delivery: %s", exc)
                sent = 0
            if not sent:
                await asyncio.sleep(POLL_S)

    async def deliver_due(self, limit: int = 10) -> int:
        """Try every due notification once (at most ``limit``); returns how many were tried."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT n.id, n.channel, n.target, n.event, n.payload, n.attempts, t.webhook_secret "
                "FROM notifications n JOIN field_teams t ON t.team_id = n.team_id "
                "WHERE n.state = 'pending' AND n.next_at <= now() "
                "ORDER BY n.next_at LIMIT $1 FOR UPDATE OF n SKIP LOCKED",
                limit,
            )
            for row in rows:
                await self._attempt(conn, row)
        return len(rows)

    async def _attempt(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        attempts = row["attempts"] + 1
        try:
            if row["channel"] == "webhook":
                body = json.dumps(row["payload"], ensure_ascii=False).encode()
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: stamp,
                    SIGNATURE_HEADER: sign(row["webhook_secret"] or "", stamp, body),
                    DELIVERY_HEADER: str(row["id"]),
                }
                await asyncio.to_thread(_post, row["target"], body, headers)
            else:
                incident = row["payload"]["incident"]
                subject = f"[IOC] {row['event']}: #{incident['id']} {incident['title']}"
                text = _mail_text(row["payload"])
                await asyncio.to_thread(_mail, self.smtp_url, self.sender, row["target"], subject, text)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            dead = attempts >= self.max_attempts
            await conn.execute(
                "UPDATE notifications SET attempts = $2, last_error = $3, state = $4, "
                "next_at = now() + make_interval(secs => $5) WHERE id = $1",
                row["id"],
                attempts,
                str(exc)[:500] or type(exc).__name__,
                "dead" if dead else "pending",
                backoff_s(self.backoff, attempts),
            )
            log = logger.error if dead else logger.warning
            log(
                "notification %s (%s to %s) attempt %d failed: %s",
                row["id"],
                row["channel"],
                row["target"],
                attempts,
                exc,
            )
            return
        await conn.execute(
            "UPDATE notifications SET attempts = $2, state = 'sent', sent_at = now(), last_error = NULL WHERE id = $1",
            row["id"],
            attempts,
        )
        logger.info("notification %s (%s) sent to %s", row["id"], row["channel"], row["target"])


def team_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A team as the API shows it (never its webhook secret)."""
    team = dict(row)
    team.pop("webhook_secret", None)
    return team
