"""Field links over HTTP, and the pictures kept with incidents.

``operator_router`` (behind the API's login): make, list and revoke an incident's field links, pin a camera's
snapshot to an incident, read an incident's pictures. ``public_router``: ``/api/v1/field/{token}``, what a
link allows and nothing more (read its incident, its nearby cameras' snapshots, post a note or a photo);
posts are rate-limited per link and audited with the link as actor.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dashboards.api.acting import Act, IncidentId
from dashboards.api.deps import ConnDep, OperatorDep, SourceDep, get_settings
from dashboards.api.errors import ApiError, error_body, not_found
from incidents import field, media, photos, queries, store
from ioc import audit
from opendata.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

operator_router = APIRouter(tags=["incidents"])
public_router = APIRouter(tags=["field"])

Json = dict[str, Any]
ItemId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Token = Annotated[str, Path(pattern=field.TOKEN_RE)]
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
IMAGE_HEADERS = {"Cache-Control": "private, max-age=86400", "Content-Security-Policy": "default-src 'none'"}
POST_BURST = 5
PHOTO_BODY = {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}, "required": True}


class LinkIn(BaseModel):
    """A field link to make: for a team (optional), living ``hours`` (default IOC_FIELD_LINK_HOURS)."""

    team: str | None = Field(None, min_length=1, max_length=64)
    hours: float | None = Field(None, gt=0, le=24 * 30)


class PinIn(BaseModel):
    """The camera whose latest snapshot to keep with the incident."""

    device_id: str = Field(min_length=1, max_length=128)


class FieldNoteIn(BaseModel):
    """A note from the field."""

    text: str = Field(min_length=1, max_length=4000)


def public_base(request: Request) -> str:
    """The address links are made with: IOC_PUBLIC_URL, else the one this request came to."""
    return (get_settings(request).public_url or str(request.base_url)).rstrip("/")


def link_maker(request: Request, actor: str) -> store.LinkMaker:
    """What ``store.assign_team`` calls to give the team a field link (its URL goes into the notification)."""
    ttl = timedelta(hours=get_settings(request).field_link_hours)

    async def make(conn: Any, incident_id: int, team: str) -> Json:
        token = field.new_token()
        _, expires_at = await field.insert(conn, incident_id, token, actor, ttl=ttl, team=team)
        return {"field_link": public_base(request) + field.path(token), "field_link_expires_at": expires_at.isoformat()}

    return make


def _image(row: Any) -> Response:
    return Response(bytes(row["data"]), media_type=row["content_type"], headers=IMAGE_HEADERS)


@operator_router.post("/incidents/{incident_id}/field-links", status_code=201)
async def create_link(body: LinkIn, request: Request, act: Act) -> Json:
    """A field link to the incident (operator); the token is in this answer only."""
    hours = body.hours or get_settings(request).field_link_hours
    made = partial(field.create, actor=act.user.name, ttl=timedelta(hours=hours), team=body.team)
    token, link_id, expires = await act.run(
        "incident.field_link", {"team": body.team, "hours": hours}, made, noted=lambda r: {"link_id": r[1]}
    )
    url = public_base(request) + field.path(token)
    return {
        "id": link_id,
        "incident_id": act.incident_id,
        "team": body.team,
        "expires_at": expires,
        "token": token,
        "url": url,
    }


@operator_router.get("/incidents/{incident_id}/field-links")
async def list_links(incident_id: IncidentId, conn: ConnDep, by: OperatorDep) -> Json:
    """The incident's field links, newest first, without their tokens (operator)."""
    return {"items": await field.links(conn, incident_id)}


@operator_router.post("/incidents/{incident_id}/field-links/{link_id}/revoke")
async def revoke_link(link_id: ItemId, act: Act) -> Json:
    """End a field link now (operator); its page then says it was revoked."""
    await act.run("incident.field_revoke", {"link_id": link_id}, field.revoke, link_id, act.user.name)
    return {"items": await field.links(act.conn, act.incident_id)}


@operator_router.post("/incidents/{incident_id}/pins", status_code=201)
async def pin(body: PinIn, act: Act) -> Json:
    """Keep a copy of a camera's latest snapshot with the incident (operator); answers with the incident."""
    detail = body.model_dump()
    await act.run("incident.pin", detail, media.pin_snapshot, act.user.name, body.device_id, noted=_media_id)
    return await queries.get(act.conn, act.incident_id)


def _media_id(media_id: int) -> Json:
    return {"media_id": media_id}


@operator_router.get(
    "/incidents/{incident_id}/media/{media_id}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
async def get_media(incident_id: IncidentId, media_id: ItemId, conn: ConnDep) -> Response:
    """A picture kept with the incident (a field photo or a pinned snapshot)."""
    row = await media.get(conn, incident_id, media_id)
    if row is None:
        raise not_found(f"picture {media_id} of incident {incident_id}")
    return _image(row)


# ------------------------------------------------------------------ what a link allows (public)


async def _link(conn: Any, token: str) -> field.Link:
    try:
        return await field.resolve(conn, token)
    except field.LinkUnknown as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except field.LinkGone as exc:
        raise ApiError(410, "gone", str(exc)) from exc


def _throttled(request: Request, link: field.Link) -> JSONResponse | None:
    """429 when the link has posted too much this minute, else None."""
    state = request.app.state
    if getattr(state, "field_limiter", None) is None:
        state.field_limiter = RateLimiter(get_settings(request).field_posts_per_minute, POST_BURST)
    wait = state.field_limiter.take(str(link.id))
    if not wait:
        return None
    retry = max(1, int(wait + 0.999))
    message = f"too many posts from this link: wait {retry} s"
    return JSONResponse(error_body("too_many_requests", message, retry_after_s=retry), 429, {"Retry-After": str(retry)})


@public_router.get("/field/{token}")
async def field_view(token: Token, conn: ConnDep) -> Json:
    """The link's incident: title, state, severity, place, procedure (read only) and what the field posted."""
    return await field.view(conn, await _link(conn, token))


@public_router.get("/field/{token}/cameras")
async def field_cameras(token: Token, conn: ConnDep) -> Json:
    """Cameras within 500 m of the link's incident, nearest first."""
    return {"items": await field.cameras(conn, await _link(conn, token))}


@public_router.get(
    "/field/{token}/cameras/{device_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def field_snapshot(token: Token, device_id: DeviceId, conn: ConnDep) -> Response:
    """The latest snapshot of a camera near the link's incident (only those)."""
    link = await _link(conn, token)
    if device_id not in {c["device_id"] for c in await field.cameras(conn, link)}:
        raise not_found(f"camera {device_id!r} near this incident")
    row = await conn.fetchrow("SELECT content_type, data FROM snapshots WHERE device_id = $1", device_id)
    if row is None:
        raise not_found(f"snapshot of {device_id!r}")
    return _image(row)


@public_router.get(
    "/field/{token}/media/{media_id}", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}}
)
async def field_media(token: Token, media_id: ItemId, conn: ConnDep) -> Response:
    """A picture of the link's incident (only its own)."""
    link = await _link(conn, token)
    row = await media.get(conn, link.incident_id, media_id)
    if row is None:
        raise not_found(f"picture {media_id}")
    return _image(row)


@public_router.post("/field/{token}/notes", status_code=201, response_model=None)
async def field_note(
    token: Token, body: FieldNoteIn, request: Request, conn: ConnDep, source: SourceDep
) -> Json | JSONResponse:
    """Post a note to the link's incident (its timeline shows it as from the field)."""
    link = await _link(conn, token)
    if (refused := _throttled(request, link)) is not None:
        return refused
    await field.add_note(conn, link, body.text)
    await audit.record(conn, link.actor, "field.note", str(link.incident_id), "success", source, {"link_id": link.id})
    return await field.view(conn, link)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes ``limit`` bytes (never held beyond it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise photos.PhotoError("too_large", f"the picture is {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise photos.PhotoError("too_large", f"the picture is over the limit of {limit:,} bytes")
    return bytes(body)


PHOTO_STATUS = {"too_large": 413, "not_an_image": 415, "corrupt": 422}


@public_router.post(
    "/field/{token}/photos", status_code=201, response_model=None, openapi_extra={"requestBody": PHOTO_BODY}
)
async def field_photo(
    token: Token,
    request: Request,
    conn: ConnDep,
    source: SourceDep,
    caption: Annotated[str | None, Query(max_length=media.MAX_CAPTION)] = None,
) -> Json | JSONResponse:
    """Post a photo (the JPEG or PNG file as the body; its type is read from its bytes, its metadata removed)."""
    link = await _link(conn, token)
    if (refused := _throttled(request, link)) is not None:
        return refused
    limit = get_settings(request).field_photo_max_bytes
    target = str(link.incident_id)
    try:
        content_type, data = photos.clean(await _read_limited(request, limit), limit)
    except photos.PhotoError as exc:
        await audit.record(
            conn, link.actor, "field.photo", target, "failure", source, {"link_id": link.id, "reason": exc.code}
        )
        raise ApiError(PHOTO_STATUS[exc.code], exc.code, str(exc)) from exc
    detail = {"via": "field", "link_id": link.id}
    media_id = await media.add_photo(conn, link.incident_id, link.actor, content_type, data, caption or None, detail)
    await audit.record(
        conn,
        link.actor,
        "field.photo",
        target,
        "success",
        source,
        {"link_id": link.id, "media_id": media_id, "bytes": len(data)},
    )
    return await field.view(conn, link)
