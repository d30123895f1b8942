"""Open data API keys and their daily use."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Integer, Table, Text, func

from ioc.tables.core import TZ, metadata

# Open data API keys of businesses (`ioc apikeys`): only the SHA-256 of each key is stored; its quotas.
open_api_keys = Table(
    "open_api_keys",
    metadata,
    Column("id", Text, primary_key=True),  # the key's public prefix: ioc_<id>_<secret>
    Column("name", Text, nullable=False),
    Column("key_sha256", Text, nullable=False, unique=True),
    Column("per_minute", Integer, nullable=False),
    Column("rows_per_day", BigInteger, nullable=False),
    Column("created_at", TZ, nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("revoked_at", TZ, nullable=True),
)

# Use of each key per UTC day (the server adds its counts every few seconds).
open_api_usage = Table(
    "open_api_usage",
    metadata,
    Column("key_id", Text, ForeignKey("open_api_keys.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("rows", BigInteger, nullable=False, server_default="0"),
)
