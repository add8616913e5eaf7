"""The daily DAG's schedule, built from the settings in one place.

The timetable is a data-interval one on purpose: the run for revenue date D
covers [D 06:00, D+1 06:00) business time, its logical date is D 06:00 and it
starts at D+1 06:00 (``ssp_revenue.calendar``). The DAG starts at the go-live
date (``SSP_REVENUE_START_DATE``), so the first interval the scheduler makes
is the first revenue date in scope.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable

from ssp_revenue import calendar
from ssp_revenue.settings import Settings

DEFAULT_START = dt.date(2026, 1, 1)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def daily_dag_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``schedule``, ``start_date``, ``end_date`` and ``catchup`` for ``ssp_revenue_daily``.

    ``SSP_REVENUE_CATCHUP`` (default off: each run re-fetches every date still
    due, so missed intervals need no runs of their own) and
    ``SSP_REVENUE_END_DATE`` (the last revenue date the scheduler makes a run
    for, e.g. when an account is retired) are Airflow-only settings.
    """
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    first = settings.start_date or DEFAULT_START
    last = env.get("SSP_REVENUE_END_DATE")
    # The end of the last date's interval (exclusive): a manual run whose logical
    # date falls anywhere in that interval still gets its tasks.
    end = (calendar.run_due(dt.date.fromisoformat(last), settings.tz) - dt.timedelta(seconds=1)
           if last else None)
    return {
        "schedule": CronDataIntervalTimetable(calendar.RUN_CRON, timezone=settings.business_tz),
        "start_date": pendulum.instance(calendar.run_logical_date(first, settings.tz)),
        "end_date": pendulum.instance(end) if end is not None else None,
        "catchup": _flag(env.get("SSP_REVENUE_CATCHUP")),
    }


CLOSE_TIME = dt.time(9, 0)


def monthly_dag_arguments(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``ssp_revenue_monthly_close``: on ``SSP_REVENUE_CLOSE_DAY`` at 09:00 business time.

    With ``SSP_REVENUE_END_DATE`` its last run is the close of that date's month.
    """
    from airflow.sdk import CronTriggerTimetable

    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    last = env.get("SSP_REVENUE_END_DATE")
    end = None
    if last:
        day = dt.date.fromisoformat(last)
        first_of_next = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        close = dt.datetime.combine(first_of_next.replace(day=settings.close_day), CLOSE_TIME,
                                    tzinfo=settings.tz)
        end = pendulum.instance(close.astimezone(dt.UTC))
    return {
        "schedule": CronTriggerTimetable(
            f"{CLOSE_TIME.minute} {CLOSE_TIME.hour} {settings.close_day} * *",
            timezone=settings.business_tz),
        "start_date": pendulum.instance(calendar.run_logical_date(settings.start_date or DEFAULT_START,
                                                                  settings.tz)),
        "end_date": end,
        "catchup": False,
    }


def retry_delay(environ: Mapping[str, str] | None = None) -> dt.timedelta:
    """Between a failed task's tries (``SSP_REVENUE_RETRY_DELAY_SECONDS``, default 300)."""
    env = os.environ if environ is None else environ
    return dt.timedelta(seconds=int(env.get("SSP_REVENUE_RETRY_DELAY_SECONDS", "300")))
