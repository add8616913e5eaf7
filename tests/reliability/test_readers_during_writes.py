"""A reader querying a partition while 200 successive publishes switch it always sees one
complete version: the row count and total of a version that was published, never an
empty, partial or mixed partition."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest

from ssp_revenue.core.clock import FixedClock
from ssp_revenue.ingest.normalise import totals_of
from ssp_revenue.lake.publish import publish_batch
from ssp_revenue.operate import runtime
from ssp_revenue.operate.query import LocalEngine
from tests.unit.helpers import rows, table

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 5)
PUBLISHES = 200


def variant(n: int) -> Any:
    """Version n: a different row count and different money, so every version is distinguishable."""
    data = rows(3 + n % 7)
    for row in data:
        row["revenue"] += Decimal(n) / 1000
    return table(data)


def test_readers_see_only_complete_versions(lake_settings: Any) -> None:
    services = runtime.services_for(lake_settings, clock=FixedClock(dt.datetime(2026, 11, 6, tzinfo=dt.UTC)))
    runtime.bootstrap(services)
    expected = {}
    for n in range(PUBLISHES):
        t = totals_of(variant(n))
        expected[n] = (t.rows, t.revenue)
    allowed = set(expected.values())
    publish_batch(variant(0), ssp="adpulse", revenue_date=DAY, fetched_at=services.clock.now(),
                  raw_object="raw/x", expected_version=None, s3=services.s3, catalog=services.catalog,
                  clock=services.clock)
    engine = LocalEngine(lake_settings, services.catalog.glue, services.s3)
    seen: list[tuple[int, Decimal]] = []
    bad: list[Any] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                count, total = engine.query(
                    "SELECT count(*), sum(revenue) FROM revenue "
                    "WHERE revenue_date = DATE '2026-11-05' AND ssp = 'adpulse'").rows[0]
            except Exception as exc:  # a reader must never fail either
                bad.append(repr(exc))
                continue
            seen.append((count, total))
            if (count, total) not in allowed:
                bad.append((count, total))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for n in range(1, PUBLISHES):
            result = publish_batch(
                variant(n), ssp="adpulse", revenue_date=DAY,
                fetched_at=services.clock.now() + dt.timedelta(minutes=n), raw_object=f"raw/{n}",
                expected_version=None, s3=services.s3, catalog=services.catalog, clock=services.clock)
            assert result.outcome == "published"
    finally:
        done.set()
        for thread in threads:
            thread.join(60)
    assert bad == []
    assert len(seen) > 20  # the readers really ran during the switches
    assert len(set(seen)) > 5
