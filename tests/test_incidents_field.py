"""Field links and pictures through a real ``ioc serve``: a link grants one incident and only its actions, ends
(410) when it expires or is revoked, is unknown (404) otherwise; posts are rate-limited; photos are sniffed, size-
limited and stripped of EXIF; a pinned snapshot outlives the camera's own."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from tests.support.auth import signed_in
from tests.support.pictures import jpeg, jpeg_with_exif, png_with_text
from tests.support.stack import serving, until

LAT, LON = 10.97, 106.97  # away from the demo fleet and the other incident tests
M_LAT = 1 / 111_195.0
PHOTO_LIMIT = 200_000


@pytest.fixture(scope="module")
def server(run_ioc: Any) -> Iterator[str]:
    """``ioc serve`` with a small photo limit and 6 posts a minute per link (bursts of 5)."""
    env = {"IOC_FIELD_PHOTO_MAX_BYTES": str(PHOTO_LIMIT), "IOC_FIELD_POSTS_PER_MINUTE": "6"}
    with serving(run_ioc, "serve-field", env) as base:
        yield base


@pytest.fixture(scope="module")
async def cameras(pool: asyncpg.Pool) -> dict[str, str]:
    """A camera 100 m north of our incidents with a snapshot, and one 3 km away with a snapshot too."""
    tag = uuid.uuid4().hex[:6].upper()
    near, far = f"T-FLD-{tag}-N", f"T-FLD-{tag}-F"
    await pool.executemany(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'camera', $1, $2, $3)",
        [(near, LAT + 100 * M_LAT, LON), (far, LAT + 3000 * M_LAT, LON)],
    )
    await pool.executemany(
        "INSERT INTO snapshots (device_id, time, data) VALUES ($1, now(), $2)",
        [(near, jpeg((200, 30, 30))), (far, jpeg((30, 30, 200)))],
    )
    return {"near": near, "far": far}


async def incident(op: httpx.AsyncClient, title: str, lat: float = LAT) -> dict[str, Any]:
    """An incident entered by the operator."""
    made = await op.post("/api/v1/incidents", json={"type": "flood", "title": title, "lat": lat, "lon": LON})
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


async def test_a_link_shows_its_incident_and_takes_notes_and_photos_for_it_only(
    server: str, people: dict[str, str], cameras: dict[str, str], pool: asyncpg.Pool
) -> None:
    async with signed_in(server, people["operator"]) as op, httpx.AsyncClient(base_url=server, timeout=10) as phone:
        mine = await incident(op, "Ngập đường Lê Lợi")
        other = await incident(op, "Secret other incident", lat=LAT + 5000 * M_LAT)
        made = await op.post(f"/api/v1/incidents/{mine['id']}/field-links", json={"hours": 2})
        assert made.status_code == 201, made.text
        link = made.json()
        token = link["token"]
        assert link["url"] == f"{server}/field/{token}"
        stored = await pool.fetchrow(
            "SELECT token_sha256, expires_at - created_at AS ttl FROM field_links WHERE id = $1", link["id"]
        )
        assert stored["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()  # only the digest is kept
        assert stored["ttl"].total_seconds() == pytest.approx(7200, abs=2)
        assert token not in str((await op.get(f"/api/v1/incidents/{mine['id']}/field-links")).json())

        view = (await phone.get(f"/api/v1/field/{token}")).json()
        assert view["incident"]["id"] == mine["id"] and view["incident"]["title"] == "Ngập đường Lê Lợi"
        assert (view["incident"]["lat"], view["incident"]["lon"]) == (LAT, LON)
        assert view["steps"] and all(
            s["text"]["vi"] and s["text"]["en"] and s["done_at"] is None for s in view["steps"]
        )
        assert "Secret other" not in str(view) and "timeline" not in view
        cams = (await phone.get(f"/api/v1/field/{token}/cameras")).json()["items"]
        assert [c["device_id"] for c in cams] == [cameras["near"]] and cams[0]["direction"] == "N"
        shot = await phone.get(f"/api/v1/field/{token}/cameras/{cameras['near']}/snapshot")
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
        assert (await phone.get(f"/api/v1/field/{token}/cameras/{cameras['far']}/snapshot")).status_code == 404

        # A note, and a phone's JPEG sent as "image/png": stored as the JPEG it is, without its EXIF.
        note = await phone.post(f"/api/v1/field/{token}/notes", json={"text": "Nước sâu 40 cm, đã đặt rào chắn"})
        assert note.status_code == 201, note.text
        raw = jpeg_with_exif()
        photo = await phone.post(
            f"/api/v1/field/{token}/photos",
            params={"caption": "Rào chắn"},
            content=raw,
            headers={"Content-Type": "image/png"},
        )
        assert photo.status_code == 201, photo.text
        posted = photo.json()["posted"]
        assert [p["kind"] for p in posted] == ["photo", "note"] and posted[0]["caption"] == "Rào chắn"
        media_id = posted[0]["media_id"]
        served = await phone.get(f"/api/v1/field/{token}/media/{media_id}")
        assert served.headers["content-type"] == "image/jpeg" and b"PhoneMaker" not in served.content
        assert dict(Image.open(io.BytesIO(served.content)).getexif()) == {0x0112: 6}
        png = await phone.post(
            f"/api/v1/field/{token}/photos", content=png_with_text(), headers={"Content-Type": "image/jpeg"}
        )
        assert png.json()["posted"][0]["kind"] == "photo"
        png_id = png.json()["posted"][0]["media_id"]
        assert (await op.get(f"/api/v1/incidents/{mine['id']}/media/{png_id}")).headers["content-type"] == "image/png"

        # The operator's timeline has them, marked as from the field, by the link.
        timeline = (await op.get(f"/api/v1/incidents/{mine['id']}")).json()["timeline"]
        field_note = next(e for e in timeline if e["kind"] == "note")
        assert field_note["via"] == "field" and field_note["actor"] == f"field (link {link['id']})"
        assert [e["media_id"] for e in timeline if e["kind"] == "photo"] == [media_id, png_id]
        assert any(e["kind"] == "field_link" and e["action"] == "created" for e in timeline)
        audited = await pool.fetch(
            "SELECT action, actor, outcome FROM audit_log WHERE target = $1 AND action LIKE 'field.%' ORDER BY id",
            str(mine["id"]),
        )
        assert [a["action"] for a in audited] == ["field.note", "field.photo", "field.photo"]

        # Refused pictures: not an image, too large; each with a clear reason.
        gif = await phone.post(
            f"/api/v1/field/{token}/photos", content=b"GIF89a" + bytes(64), headers={"Content-Type": "image/jpeg"}
        )
        assert gif.status_code == 415 and "only JPEG and PNG" in gif.json()["error"]["message"]
        big = await phone.post(f"/api/v1/field/{token}/photos", content=b"\xff\xd8\xff" + bytes(PHOTO_LIMIT))
        assert big.status_code == 413 and f"the limit is {PHOTO_LIMIT:,}" in big.json()["error"]["message"]

        # Nothing of another incident, nothing an operator does.
        other_media = await op.post(f"/api/v1/incidents/{other['id']}/pins", json={"device_id": cameras["near"]})
        other_pin = next(e for e in other_media.json()["timeline"] if e["kind"] == "pin")["media_id"]
        assert (await phone.get(f"/api/v1/field/{token}/media/{other_pin}")).status_code == 404
        assert (await phone.get(f"/api/v1/incidents/{other['id']}")).status_code == 401
        assert (await phone.post(f"/api/v1/incidents/{mine['id']}/notes", json={"text": "x"})).status_code == 401
        assert "Secret other" not in (await phone.get(f"/field/{token}")).text
        with_token = await phone.get(f"/api/v1/incidents/{mine['id']}", headers={"Authorization": f"Bearer {token}"})
        assert with_token.status_code == 401


async def test_expired_revoked_and_unknown_links_show_nothing(server: str, people: dict[str, str]) -> None:
    async with signed_in(server, people["operator"]) as op, httpx.AsyncClient(base_url=server, timeout=10) as phone:
        mine = await incident(op, "Cây đổ")
        short = (await op.post(f"/api/v1/incidents/{mine['id']}/field-links", json={"hours": 0.0005})).json()
        revoked = (await op.post(f"/api/v1/incidents/{mine['id']}/field-links", json={})).json()
        page = await phone.get(f"/field/{revoked['token']}")
        assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
        done = await op.post(f"/api/v1/incidents/{mine['id']}/field-links/{revoked['id']}/revoke")
        assert (
            done.status_code == 200 and not next(li for li in done.json()["items"] if li["id"] == revoked["id"])["live"]
        )
        again = await op.post(f"/api/v1/incidents/{mine['id']}/field-links/{revoked['id']}/revoke")
        assert again.status_code == 409

        async def expired() -> bool:
            return (await phone.get(f"/api/v1/field/{short['token']}")).status_code == 410

        await until(expired, 15, 0.2, "the 1.8 s link to expire")
        for token, status, words in (
            (short["token"], 410, "expired"),
            (revoked["token"], 410, "revoked"),
            ("x" * 43, 404, "not known"),
        ):
            api = await phone.get(f"/api/v1/field/{token}")
            assert api.status_code == status and words in api.json()["error"]["message"]
            note = await phone.post(f"/api/v1/field/{token}/notes", json={"text": "late"})
            assert note.status_code == status
            page = await phone.get(f"/field/{token}")
            assert page.status_code == status and "Cây đổ" not in page.text
        assert (await phone.get("/field/not-a-token")).status_code == 404
        timeline = (await op.get(f"/api/v1/incidents/{mine['id']}")).json()["timeline"]
        assert not any(e["kind"] == "note" for e in timeline)  # nothing got through


async def test_posts_are_rate_limited_per_link(server: str, people: dict[str, str]) -> None:
    async with signed_in(server, people["operator"]) as op, httpx.AsyncClient(base_url=server, timeout=10) as phone:
        mine = await incident(op, "Kẹt xe")
        first = (await op.post(f"/api/v1/incidents/{mine['id']}/field-links", json={})).json()["token"]
        second = (await op.post(f"/api/v1/incidents/{mine['id']}/field-links", json={})).json()["token"]
        statuses = [
            (await phone.post(f"/api/v1/field/{first}/notes", json={"text": f"n{i}"})).status_code for i in range(6)
        ]
        assert statuses == [201] * 5 + [429]  # a burst of 5, then 6 a minute
        refused = await phone.post(f"/api/v1/field/{first}/notes", json={"text": "more"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert (await phone.get(f"/api/v1/field/{first}")).status_code == 200  # reading is not limited
        assert (await phone.post(f"/api/v1/field/{second}/notes", json={"text": "other link"})).status_code == 201


async def test_a_pinned_snapshot_outlives_the_cameras_own(
    server: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    camera = f"T-FLD-PIN-{uuid.uuid4().hex[:6].upper()}"
    # 20 km from the other tests' incidents: a camera left here must not be "near" their incidents.
    lat = LAT + 20_000 * M_LAT
    await pool.execute(
        "INSERT INTO devices (device_id, kind, name, lat, lon) VALUES ($1, 'camera', $1, $2, $3)", camera, lat, LON
    )
    first = jpeg((250, 200, 0))
    await pool.execute("INSERT INTO snapshots (device_id, time, data) VALUES ($1, now(), $2)", camera, first)
    async with signed_in(server, people["operator"]) as op, signed_in(server, people["viewer"]) as viewer:
        mine = await incident(op, "Ngập hầm chui", lat=lat)
        pinned = await op.post(f"/api/v1/incidents/{mine['id']}/pins", json={"device_id": camera})
        assert pinned.status_code == 201, pinned.text
        entry = next(e for e in pinned.json()["timeline"] if e["kind"] == "pin")
        assert entry["device_id"] == camera and entry["actor"] == people["operator"]

        # The camera's next picture replaces its snapshot, then retention deletes it: the pinned copy stays.
        await pool.execute("UPDATE snapshots SET data = $2, time = now() WHERE device_id = $1", camera, jpeg((0, 0, 0)))
        await pool.execute("DELETE FROM snapshots WHERE device_id = $1", camera)
        assert (await viewer.get(f"/api/v1/devices/{camera}/snapshot")).status_code == 404
        kept = await viewer.get(f"/api/v1/incidents/{mine['id']}/media/{entry['media_id']}")
        assert kept.status_code == 200 and kept.content == first and kept.headers["content-type"] == "image/jpeg"

        nothing = await op.post(f"/api/v1/incidents/{mine['id']}/pins", json={"device_id": camera})
        assert nothing.status_code == 422 and "no snapshot" in nothing.json()["error"]["message"]
        assert (
            await viewer.post(f"/api/v1/incidents/{mine['id']}/pins", json={"device_id": camera})
        ).status_code == 403
        assert (await viewer.post(f"/api/v1/incidents/{mine['id']}/field-links", json={})).status_code == 403


async def test_a_team_that_no_longer_holds_the_incident_cannot_post_to_it(
    server: str, people: dict[str, str], pool: asyncpg.Pool
) -> None:
    tag = uuid.uuid4().hex[:6]
    first, second = f"crew-a-{tag}", f"crew-b-{tag}"
    async with (
        signed_in(server, people["admin"]) as admin,
        signed_in(server, people["operator"]) as op,
        httpx.AsyncClient(base_url=server, timeout=10) as phone,
    ):
        for team in (first, second):  # e-mail only: the notification keeps the link the team was sent
            made = await admin.post("/api/v1/teams", json={"team_id": team, "name": team, "email": f"{team}@x.test"})
            assert made.status_code == 201, made.text
        mine = await incident(op, "Ngập cầu Sài Gòn")
        own = (await op.post(f"/api/v1/incidents/{mine['id']}/field-links", json={})).json()["token"]  # no team

        async def handed(team: str, version: int) -> tuple[dict[str, Any], str]:
            answer = await op.post(f"/api/v1/incidents/{mine['id']}/assign", json={"version": version, "team": team})
            assert answer.status_code == 200, answer.text
            url = await pool.fetchval(
                "SELECT payload ->> 'field_link' FROM notifications WHERE incident_id = $1 AND team_id = $2",
                mine["id"],
                team,
            )
            return answer.json(), url.rsplit("/", 1)[1]

        held, token_a = await handed(first, mine["version"])
        assert (await phone.post(f"/api/v1/field/{token_a}/notes", json={"text": "on our way"})).status_code == 201
        held, token_b = await handed(second, held["version"])

        late = await phone.post(f"/api/v1/field/{token_a}/notes", json={"text": "still here"})
        assert late.status_code == 410 and "revoked" in late.json()["error"]["message"]
        page = await phone.get(f"/field/{token_a}")
        assert page.status_code == 410 and "Ngập cầu Sài Gòn" not in page.text
        assert (await phone.post(f"/api/v1/field/{token_b}/notes", json={"text": "pumping"})).status_code == 201
        assert (await phone.get(f"/api/v1/field/{own}")).status_code == 200  # a link of no team stays
        ended = [e for e in held["timeline"] if e["kind"] == "field_link" and e["action"] == "revoked"]
        assert [(e["team"], e["reason"], e["actor"]) for e in ended] == [(first, "handover", people["operator"])]

        taken = (await op.post(f"/api/v1/incidents/{mine['id']}/take", json={"version": held["version"]})).json()
        resolved = await op.post(
            f"/api/v1/incidents/{mine['id']}/resolve", json={"version": taken["version"], "override_reason": "drill"}
        )
        assert resolved.status_code == 200, resolved.text
        assert (await phone.post(f"/api/v1/field/{token_b}/notes", json={"text": "done"})).status_code == 201
        closed = await op.post(f"/api/v1/incidents/{mine['id']}/close", json={"version": resolved.json()["version"]})
        assert closed.status_code == 200, closed.text
        for token in (token_b, own):
            gone = await phone.post(f"/api/v1/field/{token}/notes", json={"text": "after the end"})
            assert gone.status_code == 410 and "revoked" in gone.json()["error"]["message"]
        notes = [e["text"] for e in closed.json()["timeline"] if e["kind"] == "note"]
        assert notes == ["on our way", "pumping", "done"]
