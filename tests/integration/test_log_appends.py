"""Appends to an append-only table's partition, on the local stack: whether the partition
is new, never compacted, compacted before, or compacted between an append's put and its
look at the live location, every row is read exactly once, and vacuum later deletes only
what the live generation holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from ssp_revenue.core import schema
from ssp_revenue.lake import logs, store
from ssp_revenue.operate import vacuum

from .conftest import Lake

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 6, 1)
AT = dt.datetime(2026, 6, 2, 3, 0, tzinfo=dt.UTC)


def _row(n: int) -> pa.Table:
    return pa.Table.from_pylist([{
        "revenue_date": DAY, "ssp": "adpulse", "fetched_at": AT + dt.timedelta(minutes=n),
        "sha256": f"{n:064x}", "bytes": n, "report": f"r{n}", "facts": "{}",
        "raw_object": f"s3://b/raw/{n}", "stored": True,
    }], schema=schema.FETCH_LOG)


def _append(env: Lake, n: int) -> str:
    return logs.append(env.services.s3, env.services.catalog, "fetch_log", "adpulse", DAY, _row(n),
                       at=AT + dt.timedelta(minutes=n), tag=f"{n:012x}")


def _rows(env: Lake) -> list[int]:
    table = logs.read(env.services.s3, env.services.catalog, "fetch_log", "adpulse", DAY, schema.FETCH_LOG)
    return sorted(table["bytes"].to_pylist())


def _compact(env: Lake, n: int) -> logs.Compaction:
    return logs.compact_partition(env.services.s3, env.services.catalog, "fetch_log", "adpulse", DAY,
                                  schema.FETCH_LOG, now=AT + dt.timedelta(minutes=n))


def test_every_append_is_read_once_before_after_and_during_a_compaction(
        lake_env: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    env = lake_env
    first = store.partition_prefix("fetch_log", "adpulse", DAY)
    assert _append(env, 1) == first + f"{store.stamp(AT + dt.timedelta(minutes=1))}-{1:012x}.parquet"
    assert logs.live_prefix(env.services.catalog, "fetch_log", "adpulse", DAY) == first, "registered"
    _append(env, 2)
    _append(env, 2)  # a retried append: the same file, once
    assert _rows(env) == [1, 2]

    # A compaction that switches between an append's put and its look at the location:
    # the compacted file holds the append's rows, so nothing is copied.
    real_put = store.put_once
    switched: list[str | None] = []

    def put_then_compact(s3: Any, bucket: str, key: str, body: bytes, **kwargs: Any) -> bool:
        done = real_put(s3, bucket, key, body, **kwargs)
        if not switched and key.endswith(f"-{3:012x}.parquet"):
            switched.append(_compact(env, 10).location)
        return done

    monkeypatch.setattr(store, "put_once", put_then_compact)
    assert _append(env, 3).startswith(first)
    monkeypatch.undo()
    generation = switched[0]
    assert generation is not None and generation != first
    assert logs.live_prefix(env.services.catalog, "fetch_log", "adpulse", DAY) == generation
    assert env.keys(generation) == [generation + logs.COMPACTED]
    assert _rows(env) == [1, 2, 3]

    key = _append(env, 4)  # compacted before: into the live generation too
    assert key.startswith(generation)
    assert _rows(env) == [1, 2, 3, 4]

    # The copies left behind go once the live generation holds them, past the reader grace.
    later = AT + dt.timedelta(days=30)
    plan = vacuum.plan(env.services.s3, env.services.catalog, now=later, grace=dt.timedelta(days=7))
    doomed = [c for c in plan.doomed if c.prefix.startswith("tables/fetch_log/")]
    assert first in {c.prefix for c in doomed}
    vacuum.apply(env.services.s3, env.settings.bucket, doomed)
    assert env.keys(first) == []
    assert _rows(env) == [1, 2, 3, 4]
    assert _compact(env, 40).rows == 4  # one more compaction holds the four rows, once
    assert _rows(env) == [1, 2, 3, 4]
