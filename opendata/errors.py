"""The open data API's own error: a request it cannot answer (a 400 with the message)."""

from __future__ import annotations


class QueryError(ValueError):
    """A query option the API cannot answer; the message is shown to the client with a 400."""
