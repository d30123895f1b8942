"""Field teams are told: an incident handed to a team reaches a real HTTP receiver (signed, retried after
failures) and a real SMTP server (aiosmtpd); a webhook that never answers ends in the admins' dead-letter list."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

import asyncpg
import pytest

from incidents.notify import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, backoff_s, sign
from ioc.processes import free_port
from tests.support.auth import signed_in
from tests.support.receivers import Mailbox, Receiver, smtp_mailbox, webhook_receiver
from tests.support.stack import serving, until

LAT, LON = 10.96, 106.96


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    """The webhook receiver: fails twice with 500, then accepts."""
    async with webhook_receiver([500, 503]) as rec:
        yield rec


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server (aiosmtpd) on a free port."""
    with smtp_mailbox() as box:
        yield box


@pytest.fixture(scope="module")
def server(run_ioc: Any, mailbox: tuple[Mailbox, int]) -> Iterator[str]:
    """``ioc serve`` sending e-mail to the test SMTP server, retrying fast (0.2 s, 0.4 s, ...; 4 attempts)."""
    env = {
        "IOC_SMTP_URL": f"smtp://127.0.0.1:{mailbox[1]}",
        "IOC_SMTP_FROM": "ioc-test@localhost",
        "IOC_NOTIFY_BACKOFF_S": "0.2",
        "IOC_NOTIFY_MAX_ATTEMPTS": "4",
    }
    with serving(run_ioc, "serve-notify", env) as base:
        yield base


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_s(5, n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_s(5, 30) == 3600


async def test_a_team_is_told_by_signed_webhook_and_email(
    server: str, people: dict[str, str], receiver: Receiver, mailbox: tuple[Mailbox, int], pool: asyncpg.Pool
) -> None:
    async with signed_in(server, people["admin"]) as admin, signed_in(server, people["operator"]) as op:
        made = await admin.post(
            "/api/v1/teams",
            json={
                "team_id": "drainage-q7",
                "name": "Đội thoát nước Q7",
                "webhook_url": f"http://127.0.0.1:{receiver.port}/hook",
                "email": "drainage-q7@example.test",
                "members": ["Nguyễn Văn A"],
            },
        )
        assert made.status_code == 201, made.text
        secret = made.json()["webhook_secret"]
        assert secret and "webhook_secret" not in (await op.get("/api/v1/teams")).json()["items"][0]
        assert (await op.post("/api/v1/teams", json={"team_id": "x", "name": "x"})).status_code == 403

        incident = (
            await op.post("/api/v1/incidents", json={"type": "flood", "title": "Ngập Q7", "lat": LAT, "lon": LON})
        ).json()
        handed = await op.post(
            f"/api/v1/incidents/{incident['id']}/assign", json={"version": incident["version"], "team": "drainage-q7"}
        )
        assert handed.status_code == 200, handed.text
        assert handed.json()["team"] == "drainage-q7" and handed.json()["state"] == "assigned"

        async def delivered() -> bool:
            return len(receiver.requests) >= 3 and bool(mailbox[0].messages)

        await until(delivered, 20, 0.1, "the webhook (after two failures) and the e-mail")
        headers, body = receiver.requests[-1]
        assert len({h[DELIVERY_HEADER.lower()] for h, _ in receiver.requests}) == 1  # the same delivery, retried
        expected = sign(secret, headers[TIMESTAMP_HEADER.lower()], body)
        assert hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], expected)
        assert sign("another secret", headers[TIMESTAMP_HEADER.lower()], body) != expected
        payload = json.loads(body)
        assert payload["event"] == "incident.assigned" and payload["incident"]["id"] == incident["id"]
        assert payload["incident"]["title"] == "Ngập Q7" and payload["team"] == "drainage-q7"
        mail = mailbox[0].messages[-1]
        assert mail.rcpt_tos == ["drainage-q7@example.test"] and mail.mail_from == "ioc-test@localhost"
        subject = str(make_header(decode_header(message_from_bytes(mail.content)["Subject"])))
        assert f"#{incident['id']} Ngập Q7" in subject and "incident.assigned" in subject
        # Both carry the team's field link, which opens this incident.
        link = payload["field_link"]
        assert link.startswith(f"{server}/field/") and payload["field_link_expires_at"]
        text = message_from_bytes(mail.content).get_payload(decode=True).decode()
        assert text.startswith(f"Mở trên điện thoại / Open on your phone: {link}\r\n")  # SMTP lines end in CRLF
        opened = await op.get(link.replace("/field/", "/api/v1/field/"))
        assert opened.status_code == 200 and opened.json()["incident"]["id"] == incident["id"]

        rows = await pool.fetch(
            "SELECT channel, state, attempts FROM notifications WHERE incident_id = $1 ORDER BY channel", incident["id"]
        )
        assert [(r["channel"], r["state"], r["attempts"]) for r in rows] == [
            ("email", "sent", 1),
            ("webhook", "sent", 3),
        ]
        timeline = handed.json()["timeline"]
        assert any(e["kind"] == "assign" and e.get("team") == "drainage-q7" for e in timeline)


async def test_a_webhook_that_never_answers_ends_in_the_dead_letters(
    server: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    closed = free_port()  # nothing listens there
    async with signed_in(server, people["admin"]) as admin, signed_in(server, people["operator"]) as op:
        made = await admin.post(
            "/api/v1/teams",
            json={"team_id": "tree-crew", "name": "Tree crew", "webhook_url": f"http://127.0.0.1:{closed}/hook"},
        )
        assert made.status_code == 201, made.text
        incident = (
            await op.post("/api/v1/incidents", json={"type": "report", "title": "Cây đổ", "lat": LAT, "lon": LON})
        ).json()
        handed = await op.post(
            f"/api/v1/incidents/{incident['id']}/assign", json={"version": incident["version"], "team": "tree-crew"}
        )
        assert handed.status_code == 200

        async def dead() -> list[dict[str, Any]]:
            items = (await admin.get("/api/v1/notifications", params={"state": "dead"})).json()["items"]
            return [n for n in items if n["incident_id"] == incident["id"]]

        letters = await until(dead, 20, 0.1, "the notification to give up after 4 attempts")
        assert letters[0]["attempts"] == 4 and letters[0]["team_id"] == "tree-crew"
        assert "refused" in letters[0]["last_error"].lower() or "errno" in letters[0]["last_error"].lower()
        assert (await op.get("/api/v1/notifications")).status_code == 403  # admins only
        unknown = await op.post(
            f"/api/v1/incidents/{incident['id']}/assign", json={"version": handed.json()["version"], "team": "nobody"}
        )
        assert unknown.status_code == 422 and "not an active field team" in unknown.json()["error"]["message"]
        both = await op.post(
            f"/api/v1/incidents/{incident['id']}/assign",
            json={"version": handed.json()["version"], "team": "tree-crew", "assignee": people["operator"]},
        )
        assert both.status_code == 422
