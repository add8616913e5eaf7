"""Revenue dates, cutoffs and which dates a run is due to (re)fetch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo


def dates_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every revenue date from ``first`` to ``last``, both included (empty when last < first)."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def date_start(revenue_date: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Start of the revenue date in the business time zone, as a UTC instant."""
    local = dt.datetime.combine(revenue_date, dt.time(0, 0), tzinfo=tz)
    return local.astimezone(dt.UTC)


def cutoff(revenue_date: dt.date, tz: ZoneInfo, freeze_hours: int) -> dt.datetime:
    """cutoff(D) = start of D in the business zone + freeze_hours (elapsed time)."""
    return date_start(revenue_date, tz) + dt.timedelta(hours=freeze_hours)


# The daily run's schedule, in the business zone: the run for revenue date D is
# the one whose data interval is [D 06:00, D+1 06:00); its logical date is the
# interval start and it is due at the interval end. The DAG's timetable, the
# demo, the tests and the benchmarks all take it from here.
RUN_TIME = dt.time(6, 0)
RUN_CRON = f"{RUN_TIME.minute} {RUN_TIME.hour} * * *"


# The monthly close runs on the close day at this time, business zone.
CLOSE_TIME = dt.time(9, 0)
# The statements run (fetch, reconcile, true up monthly statements): daily at this time.
STATEMENTS_TIME = dt.time(10, 0)
STATEMENTS_CRON = f"{STATEMENTS_TIME.minute} {STATEMENTS_TIME.hour} * * *"


def as_local(instant: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A plain datetime in ``tz``: Airflow hands out pendulum instants, whose arithmetic
    after ``astimezone`` silently drops the zone."""
    if instant.tzinfo is None:
        raise ValueError(f"naive run instant {instant!r}")
    return dt.datetime.fromtimestamp(instant.timestamp(), tz)


def run_logical_date(revenue_date: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The logical date (data interval start) of the daily run for ``revenue_date``, in UTC."""
    return dt.datetime.combine(revenue_date, RUN_TIME, tzinfo=tz).astimezone(dt.UTC)


def run_due(revenue_date: dt.date, tz: ZoneInfo) -> dt.datetime:
    """When the scheduler starts the run for ``revenue_date``: its data interval's end."""
    return run_logical_date(revenue_date + dt.timedelta(days=1), tz)


def revenue_date_of_logical_date(logical_date: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The revenue date whose run interval contains ``logical_date``.

    Scheduled and backfill runs have logical date = interval start = D 06:00,
    so this is D; a manual trigger with any logical date gets the interval it
    falls in, whatever data interval Airflow inferred from the wall clock.
    """
    local = as_local(logical_date, tz)
    shifted = local - dt.timedelta(hours=RUN_TIME.hour, minutes=RUN_TIME.minute)
    return shifted.date()


def anchor_date(run_after: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The newest revenue date a run made at ``run_after`` (no logical date) covers:
    the window ending yesterday, in the business zone."""
    return as_local(run_after, tz).date() - dt.timedelta(days=1)


def month_close(revenue_date: dt.date, close_day: int, tz: ZoneInfo) -> dt.datetime:
    """When the month holding ``revenue_date`` is closed: the next month's close day, CLOSE_TIME."""
    next_month = (revenue_date.replace(day=1) + dt.timedelta(days=32)).replace(day=close_day)
    return dt.datetime.combine(next_month, CLOSE_TIME, tzinfo=tz).astimezone(dt.UTC)


def dates_due(
    anchor: dt.date, refetch_days: int, adjustment_days: int = 0, start: dt.date | None = None
) -> list[dt.date]:
    """Every date a run re-fetches, oldest first: the refetch window ending at ``anchor``,
    widened to the adjustment horizon (frozen dates keep being fetched so that later
    restatements become adjustments).

    Re-fetching the whole window each run is what heals a missed or failed run.
    """
    days = max(refetch_days, adjustment_days)
    dates = [anchor - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    return [d for d in dates if start is None or d >= start]


AVAILABLE = re.compile(r"^D\+(?P<days>[0-9]) (?P<hour>[0-2][0-9]):(?P<minute>[0-5][0-9])(?: (?P<zone>\S+))?$")
ZONE_ALIASES = {"JST": "Asia/Tokyo", "UTC": "UTC"}

@dataclasses.dataclass(frozen=True)
class Availability:
    """When an SSP's report for date D is normally ready: "D+1 08:00 JST"."""

    days: int
    at: dt.time
    zone: str | None = None  # None: the business zone

    @classmethod
    def parse(cls, text: str) -> Availability:
        found = AVAILABLE.match(text.strip())
        if not found or int(found["hour"]) > 23:
            raise ValueError(f"available_after {text!r} is not like 'D+1 08:00' or 'D+1 21:00 Asia/Tokyo'")
        zone = found["zone"]
        if zone is not None:
            zone = ZONE_ALIASES.get(zone, zone)
            try:
                ZoneInfo(zone)
            except Exception:
                raise ValueError(f"available_after {text!r}: unknown time zone {zone!r}") from None
        return cls(int(found["days"]), dt.time(int(found["hour"]), int(found["minute"])), zone)

    def instant(self, revenue_date: dt.date, business_tz: ZoneInfo) -> dt.datetime:
        tz = ZoneInfo(self.zone) if self.zone else business_tz
        day = revenue_date + dt.timedelta(days=self.days)
        return dt.datetime.combine(day, self.at, tzinfo=tz).astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        try:
            first = dt.date.fromisoformat(text + "-01")
        except ValueError:
            raise ValueError(f"month must be YYYY-MM, got {text!r}") from None
        return cls(first.year, first.month)

    @classmethod
    def before(cls, day: dt.date) -> Month:
        last = day.replace(day=1) - dt.timedelta(days=1)
        return cls(last.year, last.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last(self) -> dt.date:
        return self.next().first - dt.timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def dates(self, start: dt.date | None = None) -> list[dt.date]:
        first = max(self.first, start) if start else self.first
        return dates_between(first, self.last)
