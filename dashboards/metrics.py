"""Prometheus metrics of the live server, and the ``/metrics`` route and request-latency middleware."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

WS_CLIENTS = Gauge("ioc_ws_clients", "Connected websocket clients")
WS_MESSAGES = Counter("ioc_ws_messages_sent_total", "Websocket messages sent", ["type"])
WS_WRITES = Counter(
    "ioc_ws_writes_total", "Live route writes: frames (one per wake, shared frames) or asgi (one per message)", ["path"]
)
LIVE_UPDATES = Counter("ioc_live_updates_total", "Channel states recomputed and diffed", ["channel"])
LIVE_COALESCED = Counter("ioc_live_coalesced_total", "Change notices folded into an update already pending")
WS_DROPPED = Counter("ioc_ws_dropped_total", "Undelivered updates replaced by a newer state for a slow client")
LIVE_REFRESH_SECONDS = Histogram(
    "ioc_live_refresh_seconds",
    "Time to refresh the live state and diff channels",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
NOTIFICATIONS = Counter("ioc_live_notifications_total", "Database notifications received", ["channel"])
ALERT_TRANSITIONS = Counter("ioc_alert_transitions_total", "Alert state transitions", ["to_state", "actor"])
ALERT_ENGINE_LEADER = Gauge("ioc_alert_engine_leader", "1 while this process runs the alert engine")
ALERT_EVALUATIONS = Counter("ioc_alert_evaluations_total", "Alert rule evaluation rounds")
REQUEST_SECONDS = Histogram(
    "ioc_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def time_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: observe each HTTP request's latency under its route template."""
    started = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUEST_SECONDS.labels(request.method, path, str(status)).observe(time.perf_counter() - started)
