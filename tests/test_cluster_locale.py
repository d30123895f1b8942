"""The embedded cluster compares text as bytes (collation C) and knows Vietnamese letters' cases (ctype C.UTF-8)."""

from __future__ import annotations

import asyncpg


async def test_text_is_compared_as_bytes_and_cased_as_unicode(pool: asyncpg.Pool) -> None:
    row = await pool.fetchrow("SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()")
    assert (row["datcollate"], row["datctype"]) == ("C", "C.UTF-8")
    assert await pool.fetchval("SELECT upper('đức bình thạnh')") == "ĐỨC BÌNH THẠNH"
    words = ["Bình Thạnh", "binh", "Zeta", "ábc", "Ábc", "a-b", "a_b", "Quận 10", "Quận 1", "Đức", "FL-001"]
    ordered = await pool.fetchval("SELECT array_agg(w ORDER BY w) FROM unnest($1::text[]) AS w", words)
    assert ordered == sorted(words, key=lambda w: w.encode())  # UTF-8 bytes: code points, as C.UTF-8 sorted them
