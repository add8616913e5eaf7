"""The DAG files import cleanly, cheaply, and have the schedule and tasks we rely on."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from ssp_revenue_airflow.tasks import revenue_anchor

from ..conftest import ROOT

TOKYO = ZoneInfo("Asia/Tokyo")


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {"ssp_revenue_daily", "ssp_revenue_monthly_close"} <= set(dagbag.dag_ids)


def test_importing_the_dag_does_no_heavy_work() -> None:
    code = (
        "import runpy, sys, time; t = time.monotonic();"
        f"runpy.run_path({str(ROOT / 'dags' / 'ssp_revenue_daily.py')!r});"
        "heavy = [m for m in ('great_expectations', 'duckdb', 'pandas') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_schedule_is_a_data_interval_timetable_at_six_tokyo(daily_dag: Any) -> None:
    timetable = daily_dag.timetable
    assert type(timetable).__name__ == "CronDataIntervalTimetable"
    assert timetable.expression == "0 6 * * *"
    assert "Asia/Tokyo" in str(timetable.timezone)
    assert daily_dag.max_active_runs == 1


def test_tasks_and_wiring(daily_dag: Any) -> None:
    ids = set(daily_dag.task_ids)
    assert ids == {"plan", "per_ssp.fetch", "per_ssp.validate", "per_ssp.publish", "per_ssp.finalize"}
    assert daily_dag.get_task("per_ssp.validate").upstream_task_ids == {"per_ssp.fetch"}
    assert daily_dag.get_task("per_ssp.publish").upstream_task_ids == {"per_ssp.validate"}
    assert daily_dag.get_task("per_ssp.finalize").upstream_task_ids == {"per_ssp.publish"}
    assert "plan" in daily_dag.get_task("per_ssp.fetch").upstream_task_ids


def test_revenue_date_from_a_scheduled_interval() -> None:
    ctx = {"data_interval_start": dt.datetime(2026, 11, 5, 6, tzinfo=TOKYO),
           "data_interval_end": dt.datetime(2026, 11, 6, 6, tzinfo=TOKYO), "params": {}}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 11, 5)


def test_revenue_date_when_the_interval_is_zero_width() -> None:
    """Airflow 3 manual and dag.test() runs can have start == end: same answer as scheduled."""
    instant = dt.datetime(2026, 11, 6, 6, tzinfo=TOKYO)
    ctx = {"data_interval_start": instant, "data_interval_end": instant, "logical_date": instant,
           "dag_run": SimpleNamespace(run_after=instant), "params": {}}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 11, 5)


def test_revenue_date_with_no_interval_uses_run_after() -> None:
    ctx = {"data_interval_start": None, "data_interval_end": None, "logical_date": None,
           "dag_run": SimpleNamespace(run_after=dt.datetime(2026, 11, 6, 7, tzinfo=TOKYO)),
           "params": {}}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 11, 5)


def test_an_explicit_revenue_date_wins() -> None:
    ctx = {"params": {"revenue_date": "2026-10-01"},
           "data_interval_end": dt.datetime(2026, 11, 6, 6, tzinfo=TOKYO)}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 10, 1)
