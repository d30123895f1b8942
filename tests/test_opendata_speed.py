"""What keeps the open data API fast (docs/open-data.md, Performance): its statements are cacheable, the
latest-of-every-Datastream query takes arrays rather than a long IN list, and with TimescaleDB a time bound on
hourly Observations becomes a range of ``rollups_1m.bucket``."""

from __future__ import annotations

import asyncpg
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from ioc.kinds import load_kinds
from opendata import latest
from opendata.config import load_config
from opendata.entities import build
from opendata.filters import Compiler
from tests.opendata_fixtures import CAMERA, T0, open_data_fixture  # noqa: F401 (fixtures)

KINDS = load_kinds(None)
CONFIG = load_config(None, KINDS)


def test_every_view_can_be_cached() -> None:
    """SQLAlchemy compiles a statement once only if it has a cache key (``values()`` has none: with it, every
    request compiled the views again)."""
    sets = build(CONFIG, KINDS)
    for entity in sets.values():
        stmt = select(entity.view).where(Compiler(sets, entity).where("id eq 'x'")).limit(5)
        assert stmt._generate_cache_key() is not None, entity.name


def test_latest_takes_its_streams_as_arrays() -> None:
    """500 streams are 3 array parameters, not 1,500 values to plan."""
    streams = [
        {"_device": f"D{i}", "_metric": "water_level_cm", "_stream": "water_level_cm", "_resolution": "raw",
         "_statistic": "mean"}
        for i in range(500)
    ]  # fmt: skip
    compiled = latest.latest(streams).compile(dialect=postgresql.dialect())
    arrays = [v for v in compiled.params.values() if isinstance(v, list)]
    assert "unnest" in str(compiled) and len(compiled.params) < 10 and [len(a) for a in arrays] == [500] * 3
    assert "time_bucket" not in str(compiled) and "rollups_1m" not in str(compiled)  # no hourly branch needed


async def test_a_time_bound_on_hourly_observations_reads_a_range(pool: asyncpg.Pool, open_data: None) -> None:
    def plan_sql(timescale: bool) -> str:
        ob = build(CONFIG, KINDS, timescale=timescale)["Observations"]
        stmt = select(ob.view).where(
            ob.col("_device") == CAMERA, ob.col("_stream") == "people_count", ob.col("phenomenonTime") >= T0
        )
        compiled = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        return f"EXPLAIN {compiled}"

    bound = f"bucket >= '{T0.strftime('%Y-%m-%d %H:%M:%S')}"
    with_ts = "\n".join(r[0] for r in await pool.fetch(plan_sql(True)))
    without = "\n".join(r[0] for r in await pool.fetch(plan_sql(False)))
    assert bound in with_ts, with_ts
    assert bound not in without, without
