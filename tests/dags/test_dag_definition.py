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
    assert {"ssp_revenue_daily", "ssp_revenue_chances", "ssp_revenue_monthly_close"} <= set(dagbag.dag_ids)


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
    """One group per registered SSP, in the registry's order (map index = position), no plan task."""
    from ssp_revenue.core import registry
    from ssp_revenue.core.settings import Settings

    ids = set(daily_dag.task_ids)
    assert ids == {"per_ssp.ingest", "per_ssp.load"}
    assert daily_dag.get_task("per_ssp.load").upstream_task_ids == {"per_ssp.ingest"}
    assert daily_dag.get_task("per_ssp.ingest").upstream_task_ids == set()
    names = [c.name for c in registry.load_registry(Settings.from_env().config_dir / "ssps.yaml")]
    mapped = daily_dag.task_group_dict["per_ssp"]._expand_input.value["job"]
    assert mapped == [{"ssp": name} for name in names] and len(names) >= 2
    # The job is one XCom, not one per key as a dict return type would make it.
    assert not any(daily_dag.get_task(t).multiple_outputs for t in ids)


def test_revenue_date_from_a_scheduled_or_backfill_run() -> None:
    """Logical date = interval start = D 06:00 JST: the run for D."""
    ctx = {"data_interval_start": dt.datetime(2026, 11, 5, 6, tzinfo=TOKYO),
           "data_interval_end": dt.datetime(2026, 11, 6, 6, tzinfo=TOKYO),
           "logical_date": dt.datetime(2026, 11, 5, 6, tzinfo=TOKYO), "params": {}}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 11, 5)


def test_a_manual_trigger_by_logical_date_ignores_the_interval_airflow_inferred() -> None:
    """`airflow dags trigger --logical-date 2026-10-28T21:00Z` gets an interval from the wall clock."""
    ctx = {"data_interval_start": dt.datetime(2026, 11, 30, 6, tzinfo=TOKYO),
           "data_interval_end": dt.datetime(2026, 12, 1, 6, tzinfo=TOKYO),
           "logical_date": dt.datetime(2026, 10, 28, 21, 0, tzinfo=dt.UTC),
           "dag_run": SimpleNamespace(run_after=dt.datetime(2026, 12, 1, 9, tzinfo=TOKYO)),
           "params": {}}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 10, 29)


def test_a_manual_trigger_without_logical_date_covers_the_window_ending_yesterday() -> None:
    ctx = {"data_interval_start": None, "data_interval_end": None, "logical_date": None,
           "dag_run": SimpleNamespace(run_after=dt.datetime(2026, 11, 6, 7, tzinfo=TOKYO)),
           "params": {}}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 11, 5)


def test_an_explicit_revenue_date_wins() -> None:
    ctx = {"params": {"revenue_date": "2026-10-01"},
           "data_interval_end": dt.datetime(2026, 11, 6, 6, tzinfo=TOKYO)}
    assert revenue_anchor(ctx, TOKYO) == dt.date(2026, 10, 1)


def test_the_schedulers_interval_for_a_date_is_the_librarys_run_for_it() -> None:
    """The timetable the scheduler uses and calendar.run_logical_date/run_due agree."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable

    from ssp_revenue.core import calendar
    from ssp_revenue_airflow.scheduling import daily_dag_arguments

    args = daily_dag_arguments({"SSP_REVENUE_START_DATE": "2026-10-27", "SSP_REVENUE_CATCHUP": "true",
                                "SSP_REVENUE_END_DATE": "2026-10-29"})
    assert args["catchup"] is True
    assert args["start_date"] == calendar.run_logical_date(dt.date(2026, 10, 27), TOKYO)
    assert args["end_date"] == calendar.run_due(dt.date(2026, 10, 29), TOKYO) - dt.timedelta(seconds=1)
    # What the scheduler runs: the core timetable the DAG's definition serialises to.
    timetable = CronDataIntervalTimetable(args["schedule"].expression, args["schedule"].timezone)
    restriction = TimeRestriction(earliest=args["start_date"], latest=args["end_date"], catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    seen = []
    while info is not None:
        seen.append(info)
        info = timetable.next_dagrun_info(last_automated_data_interval=info.data_interval,
                                          restriction=restriction)
    days = [dt.date(2026, 10, 27), dt.date(2026, 10, 28), dt.date(2026, 10, 29)]
    assert [i.logical_date for i in seen] == [calendar.run_logical_date(d, TOKYO) for d in days]
    assert [i.data_interval.end for i in seen] == [calendar.run_due(d, TOKYO) for d in days]
    assert [i.run_after for i in seen] == [calendar.run_due(d, TOKYO) for d in days]


def test_catchup_is_off_and_the_dag_starts_at_go_live_by_default() -> None:
    from ssp_revenue.core import calendar
    from ssp_revenue_airflow.scheduling import daily_dag_arguments

    args = daily_dag_arguments({"SSP_REVENUE_START_DATE": "2026-12-01"})
    assert args["catchup"] is False and args["end_date"] is None
    assert args["start_date"] == calendar.run_logical_date(dt.date(2026, 12, 1), TOKYO)


def test_the_monthly_close_ends_with_the_close_of_the_last_dates_month() -> None:
    from ssp_revenue_airflow.scheduling import monthly_dag_arguments

    args = monthly_dag_arguments({"SSP_REVENUE_END_DATE": "2026-10-30", "SSP_REVENUE_CLOSE_DAY": "3"})
    assert args["end_date"] == dt.datetime(2026, 11, 3, 9, 0, tzinfo=TOKYO)
    # A bounded deployment gets its closes whatever the wall clock says (without catchup the
    # scheduler makes only the latest close due, and none once that is past the end).
    assert args["schedule"].expression == "0 9 3 * *" and args["catchup"] is True
    unbounded = monthly_dag_arguments({})
    assert unbounded["end_date"] is None and unbounded["catchup"] is False
    assert monthly_dag_arguments({"SSP_REVENUE_CATCHUP": "true"})["catchup"] is True


def test_the_chance_dag_runs_when_the_schedule_says_and_its_plan_is_the_replays(dagbag: Any) -> None:
    """What the scheduler would run for ssp_revenue_chances over two days equals the chance
    runs of ssp_revenue.operate.schedule (which ``ssp-revenue replay`` runs), and each (SSP, date)
    gets at least three fetches between its availability and its cutoff."""
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import MultipleCronTriggerTimetable

    from ssp_revenue.core import calendar, registry
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import schedule

    dag = dagbag.get_dag("ssp_revenue_chances")
    assert type(dag.timetable).__name__ == "MultipleCronTriggerTimetable" and dag.max_active_runs == 1
    # What the scheduler runs: the core timetable the definition serialises to.
    serialised = encode_timetable(dag.timetable)["__var"]
    timetable = MultipleCronTriggerTimetable(*serialised["expressions"], timezone=serialised["timezone"])
    assert set(dag.task_ids) == {"plan", "per_ssp.ingest", "per_ssp.load"}
    settings = Settings.from_env()
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    start = calendar.date_start(dt.date(2026, 11, 10), TOKYO)
    end = start + dt.timedelta(days=2)
    restriction = TimeRestriction(earliest=start, latest=end, catchup=True)
    info = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    made = []
    while info is not None and info.run_after < end:
        made.append(info.run_after)
        info = timetable.next_dagrun_info(last_automated_data_interval=info.data_interval,
                                              restriction=restriction)
    planned = [r.due for r in schedule.runs_between(start, end, ssps, settings) if r.kind == "chance"]
    assert made == planned
    for config in ssps:
        attempts = schedule.attempts_before_cutoff(config, dt.date(2026, 11, 10), settings)
        assert len(attempts) >= 3, config.name
