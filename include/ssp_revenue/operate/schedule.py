"""Which runs happen when: the daily run, the fetch chances before each cutoff, the close.

The daily run at 06:00 re-fetches the whole window once a day. An SSP whose
data is ready after 06:00 would get one fetch before its cutoff from it alone,
so each (SSP, date) also gets ``fetch_chances`` chance runs spread between the
SSP's ``available_after`` and an hour before the cutoff, on the hour. A chance
run fetches only the (SSP, date) pairs whose chance it is: settled dates are
fetched no more often than before. The DAGs' timetables and
``ssp-revenue replay`` are both built from here, so a replay makes exactly the
runs the scheduler makes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from ssp_revenue.core import calendar
from ssp_revenue.core.calendar import Availability
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.settings import Settings

# The last chance starts this long before the cutoff, so that its fetch lands before it.
LAST_CHANCE_BEFORE_CUTOFF = dt.timedelta(hours=1)
HOUR = dt.timedelta(hours=1)


def available_at(config: SspConfig, revenue_date: dt.date, settings: Settings) -> dt.datetime:
    return Availability.parse(config.available_after).instant(revenue_date, settings.tz)


def _on_the_hour(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first whole hour (business zone) at or after ``instant``."""
    local = calendar.as_local(instant, tz)
    floor = local.replace(minute=0, second=0, microsecond=0)
    hours = math.ceil((local - floor) / HOUR)
    return (floor + hours * HOUR).astimezone(dt.UTC)


def is_daily_run(instant: dt.datetime, tz: ZoneInfo) -> bool:
    return calendar.as_local(instant, tz).time() == calendar.RUN_TIME


def fetch_chances(config: SspConfig, revenue_date: dt.date, settings: Settings) -> list[dt.datetime]:
    """The chance runs' instants for (SSP, date), oldest first.

    ``fetch_chances`` instants spread evenly over [available, cutoff - 1 h), each
    moved to the next whole hour; one that falls on the daily run is that run.
    """
    tz = settings.tz
    start = available_at(config, revenue_date, settings)
    last = calendar.cutoff(revenue_date, tz, settings.freeze_hours) - LAST_CHANCE_BEFORE_CUTOFF
    span = last - start
    if span < settings.fetch_chances * HOUR:
        raise ValueError(
            f"ssp {config.name}: available_after {config.available_after!r} leaves "
            f"{span} before its cutoff ({settings.freeze_hours} h) less the last chance's hour: "
            f"too little for {settings.fetch_chances} fetch chances")
    out: list[dt.datetime] = []
    for n in range(settings.fetch_chances):
        at = _on_the_hour(start + span * n / settings.fetch_chances, tz)
        if at not in out and not is_daily_run(at, tz):
            out.append(at)
    return out


def attempts_before_cutoff(config: SspConfig, revenue_date: dt.date, settings: Settings) -> list[dt.datetime]:
    """Every run that fetches (SSP, date) after it is available and before its cutoff."""
    start = available_at(config, revenue_date, settings)
    cut = calendar.cutoff(revenue_date, settings.tz, settings.freeze_hours)
    daily = [calendar.run_due(revenue_date + dt.timedelta(days=n), settings.tz) for n in range(0, 4)]
    return sorted({*fetch_chances(config, revenue_date, settings),
                   *(d for d in daily if start <= d < cut)})


def chance_times(ssps: Iterable[SspConfig], settings: Settings,
                 around: dt.date | None = None) -> list[dt.time]:
    """Business-zone times of day of every chance run (the chance DAG's cron).

    Taken over a year of dates, so an SSP given in a zone with daylight saving
    gets both of its seasonal times.
    """
    first = around or settings.start_date or dt.date(2026, 1, 1)
    times: set[dt.time] = set()
    for config in ssps:
        for n in range(0, 366, 7):
            for at in fetch_chances(config, first + dt.timedelta(days=n), settings):
                times.add(calendar.as_local(at, settings.tz).time())
    return sorted(times)


def chance_plan(at: dt.datetime, ssps: Iterable[SspConfig], settings: Settings) -> dict[str, list[dt.date]]:
    """The (SSP, dates) whose chance the run made at ``at`` is."""
    today = calendar.as_local(at, settings.tz).date()
    plan: dict[str, list[dt.date]] = {}
    for config in ssps:
        for back in range(4, -1, -1):
            day = today - dt.timedelta(days=back)
            if settings.start_date and day < settings.start_date:
                continue
            if settings.end_date and day > settings.end_date:
                continue
            if at in fetch_chances(config, day, settings):
                plan.setdefault(config.name, []).append(day)
    return plan


@dataclasses.dataclass(frozen=True, order=True)
class Run:
    """One run the scheduler makes: when it starts, which DAG, and its logical date."""

    due: dt.datetime
    kind: str  # "daily", "chance", "close" or "statements"
    logical_date: dt.datetime
    revenue_date: dt.date | None = None  # daily runs: the date whose interval it is


def runs_between(start: dt.datetime, end: dt.datetime, ssps: list[SspConfig],
                 settings: Settings) -> list[Run]:
    """Every run due in [start, end), in the order the scheduler starts them."""
    tz = settings.tz
    runs: list[Run] = []
    first = calendar.as_local(start, tz).date() - dt.timedelta(days=2)
    last = calendar.as_local(end, tz).date() + dt.timedelta(days=1)
    day = first
    times = chance_times(ssps, settings, around=first)
    statements = settings.statement_months > 0 and any(c.statement is not None for c in ssps)
    while day <= last:
        if (settings.start_date is None or day >= settings.start_date) and (
                settings.end_date is None or day <= settings.end_date):
            due = calendar.run_due(day, tz)
            runs.append(Run(due, "daily", calendar.run_logical_date(day, tz), day))
        for time in times:
            at = dt.datetime.combine(day, time, tzinfo=tz).astimezone(dt.UTC)
            if chance_plan(at, ssps, settings):
                runs.append(Run(at, "chance", at))
        in_scope = (settings.start_date is None or day > settings.start_date) and (
            settings.end_date is None or day <= calendar.month_close(
                settings.end_date, settings.close_day, tz).astimezone(tz).date())
        if day.day == settings.close_day and in_scope:
            close = dt.datetime.combine(day, calendar.CLOSE_TIME, tzinfo=tz).astimezone(dt.UTC)
            runs.append(Run(close, "close", close))
        if statements and in_scope:
            at = dt.datetime.combine(day, calendar.STATEMENTS_TIME, tzinfo=tz).astimezone(dt.UTC)
            runs.append(Run(at, "statements", at))
        day += dt.timedelta(days=1)
    return sorted(r for r in runs if start <= r.due < end)
