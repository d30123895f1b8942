"""The live server: REST API, websocket hub and alert engine over TimescaleDB (``ioc serve``)."""
