"""The DAGs' schedules, built from the settings in one place.

The daily timetable is a data-interval one on purpose: the run for revenue
date D covers [D 06:00, D+1 06:00) business time, its logical date is D 06:00
and it starts at D+1 06:00 (``ssp_revenue.core.calendar``). Both DAGs start at the
go-live date (``SSP_REVENUE_START_DATE``), so the first interval the scheduler
makes is the first revenue date in scope.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, CronTriggerTimetable, MultipleCronTriggerTimetable

from ssp_revenue.core import calendar, registry
from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import schedule

DEFAULT_START = dt.date(2026, 1, 1)


def _start(settings: Settings) -> pendulum.DateTime:
    return pendulum.instance(calendar.run_logical_date(settings.start_date or DEFAULT_START, settings.tz))


def daily_dag_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``schedule``, ``start_date``, ``end_date`` and ``catchup`` for ``ssp_revenue_daily``."""
    settings = Settings.from_env(environ)
    # The end of the last date's interval (exclusive): a manual run whose logical
    # date falls anywhere in that interval still gets its tasks.
    end = (pendulum.instance(calendar.run_due(settings.end_date, settings.tz) - dt.timedelta(seconds=1))
           if settings.end_date else None)
    return {
        "schedule": CronDataIntervalTimetable(calendar.RUN_CRON, timezone=settings.business_tz),
        "start_date": _start(settings),
        "end_date": end,
        "catchup": settings.catchup,
    }


def chances_dag_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``ssp_revenue_chances``: a cron trigger at every time of day some SSP has a fetch chance.

    Why a second DAG on Airflow's MultipleCronTriggerTimetable rather than a
    custom timetable or a deferrable wait: the chance times are fixed times of
    day (available_after and the cutoff are both daily), so a stock,
    serialisable timetable says them; no plugin must be importable by the
    scheduler, and no run sits in the triggerer for a day. The daily DAG keeps
    its data-interval runs and their meaning. Catchup follows the daily DAG's
    (``SSP_REVENUE_CATCHUP``, off by default: a missed chance is covered by the
    next chance or the daily run).
    """
    settings = Settings.from_env(environ)
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    crons = [f"{t.minute} {t.hour} * * *" for t in schedule.chance_times(ssps, settings)]
    end = (pendulum.instance(calendar.cutoff(settings.end_date, settings.tz, settings.freeze_hours))
           if settings.end_date else None)
    return {
        "schedule": MultipleCronTriggerTimetable(*crons, timezone=settings.business_tz) if crons else None,
        "start_date": _start(settings),
        "end_date": end,
        "catchup": settings.catchup,
    }


def monthly_dag_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``ssp_revenue_monthly_close``: on ``SSP_REVENUE_CLOSE_DAY`` at 09:00 business time.

    With ``SSP_REVENUE_END_DATE`` its last run is the close of that date's month,
    and every close up to it is made (catchup): without catchup the scheduler makes
    only the latest close due by the wall clock, and once that is past the end date
    (a bounded deployment looked at a month later) it would make none. Unbounded,
    catchup follows ``SSP_REVENUE_CATCHUP`` as the daily DAG's does.
    """
    settings = Settings.from_env(environ)
    end = (pendulum.instance(calendar.month_close(settings.end_date, settings.close_day, settings.tz))
           if settings.end_date else None)
    close = calendar.CLOSE_TIME
    return {
        "schedule": CronTriggerTimetable(f"{close.minute} {close.hour} {settings.close_day} * *",
                                         timezone=settings.business_tz),
        "start_date": _start(settings),
        "end_date": end,
        "catchup": settings.catchup or end is not None,
    }


STATEMENTS_CRON = calendar.STATEMENTS_CRON  # after the daily run and the close
COMPACT_CRON = "0 4 * * *"  # before the 06:00 daily run; closed dates get no appends anyway
VACUUM_CRON = "30 4 * * 0"  # weekly, Sunday


def upkeep_dag_arguments(cron: str, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``ssp_revenue_compact`` (daily) and ``ssp_revenue_vacuum`` (weekly): no catchup, since
    each run does everything that is due by its own clock."""
    settings = Settings.from_env(environ)
    return {
        "schedule": CronTriggerTimetable(cron, timezone=settings.business_tz),
        "start_date": _start(settings),
        "catchup": False,
    }


def retry_delay(environ: Mapping[str, str] | None = None) -> dt.timedelta:
    """Between a failed task's tries (``SSP_REVENUE_RETRY_DELAY_SECONDS``)."""
    return dt.timedelta(seconds=Settings.from_env(environ).retry_delay_seconds)
