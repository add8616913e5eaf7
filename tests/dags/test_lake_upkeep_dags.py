"""The upkeep DAGs: their schedules, and a run of each doing what the CLI does."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ssp_revenue.lake import logs, store
from ssp_revenue.operate import runtime

from .conftest import run_every_ssp

pytestmark = pytest.mark.dags
TOKYO = ZoneInfo("Asia/Tokyo")
FIRST = dt.date(2026, 11, 5)


def test_compaction_is_daily_and_vacuum_weekly_before_the_daily_run(dagbag: Any) -> None:
    compact, vacuum = dagbag.get_dag("ssp_revenue_compact"), dagbag.get_dag("ssp_revenue_vacuum")
    assert compact.timetable.expression == "0 4 * * *" and vacuum.timetable.expression == "30 4 * * 0"
    assert "Asia/Tokyo" in str(compact.timetable.timezone)
    assert compact.task_ids == ["compact_closed_dates"] and vacuum.task_ids == ["vacuum_superseded"]
    assert not compact.catchup and not vacuum.catchup


def test_a_run_of_each_compacts_closed_dates_and_vacuums_past_the_grace(
        dagbag: Any, airflow_lake: Any, emulator: Any) -> None:
    services = airflow_lake
    runtime.bootstrap(services)
    for day in range(3):
        at = dt.datetime.combine(FIRST + dt.timedelta(days=day + 1), dt.time(7), tzinfo=TOKYO)
        run_every_ssp(services, emulator, at.astimezone(dt.UTC),
                      [FIRST + dt.timedelta(days=d) for d in range(day + 1)])
    s3, bucket, catalog = services.s3, services.settings.bucket, services.catalog

    def files(table: str) -> int:
        return sum(len(store.parquet_keys(s3, bucket, store.split_uri(p.location)[1]))
                   for p in catalog.partitions(table))

    before = files("publish_log")
    # Sixty days on, the dates are closed and the superseded versions past the grace.
    later = dt.datetime.combine(FIRST + dt.timedelta(days=60), dt.time(4), tzinfo=TOKYO).astimezone(dt.UTC)
    emulator.set_clock(later)
    assert "success" in str(dagbag.get_dag("ssp_revenue_compact").test(logical_date=later).state)
    assert files("publish_log") == len(catalog.partitions("publish_log")) < before
    versions_before = len([k for k in store.list_keys(s3, bucket, "tables/revenue/")])
    assert "success" in str(dagbag.get_dag("ssp_revenue_vacuum").test(logical_date=later).state)
    assert len(store.list_keys(s3, bucket, "tables/revenue/")) < versions_before
    assert all(logs.live_prefix(catalog, "publish_log", p.ssp, dt.date.fromisoformat(p.revenue_date))
               for p in catalog.partitions("publish_log"))
