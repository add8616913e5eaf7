"""Real DAG runs with dag.test() on the simulated clock, against moto and the emulator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from ssp_revenue.clock import EmulatorClock
from ssp_revenue.query import LocalEngine
from ssp_revenue_airflow import local

pytestmark = pytest.mark.dags
DAY = dt.date(2026, 11, 5)


def totals_by_date(services: Any) -> dict[dt.date, tuple[int, Decimal]]:
    engine = LocalEngine(services.settings, services.catalog.glue, services.s3)
    result = engine.query("SELECT revenue_date, count(*), sum(revenue) FROM revenue GROUP BY 1")
    return {row[0]: (row[1], row[2]) for row in result.rows}


def states(run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}


def test_two_consecutive_days_publish_the_emulators_figures(
    daily_dag: Any, airflow_lake: Any, emulator: Any
) -> None:
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    first = local.run_day(daily_dag, DAY, clock)
    assert "success" in str(first.state), states(first)
    second = local.run_day(daily_dag, DAY + dt.timedelta(days=1), clock)
    assert "success" in str(second.state), states(second)
    assert states(second)["per_ssp.finalize[0]"].endswith("success")

    published = totals_by_date(airflow_lake)
    # The window is 7 dates ending at each run's revenue date: D-6 .. D+1.
    assert sorted(published) == [DAY - dt.timedelta(days=n) for n in range(6, -2, -1)]
    at = clock.now()
    for day in (DAY, DAY + dt.timedelta(days=1)):
        truth = emulator.truth("adpulse", day, at)
        assert published[day] == (truth["rows"], Decimal(truth["revenue_micros"]).scaleb(-6))


def test_a_bad_batch_converges_without_failing_the_run(
    daily_dag: Any, airflow_lake: Any, emulator: Any
) -> None:
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    emulator.fault("adpulse", "malformed_rows", date=DAY, times=1)
    run = local.run_day(daily_dag, DAY, clock)
    assert "success" in str(run.state), states(run)
    published = totals_by_date(airflow_lake)
    assert DAY not in published and DAY - dt.timedelta(days=1) in published
    keys = airflow_lake.s3.list_objects_v2(
        Bucket=airflow_lake.settings.bucket, Prefix="quarantine/")["KeyCount"]
    assert keys == 1


def test_revoked_credentials_fail_the_run_loudly(
    daily_dag: Any, airflow_lake: Any, emulator: Any
) -> None:
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    emulator.fault("adpulse", "revoked_credentials")
    run = local.run_day(daily_dag, DAY, clock)
    assert "failed" in str(run.state)
    assert states(run)["per_ssp.finalize[0]"].endswith("failed")
