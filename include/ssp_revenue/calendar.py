"""Revenue dates, cutoffs and which dates a run is due to (re)fetch."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def date_start(revenue_date: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Start of the revenue date in the business time zone, as a UTC instant."""
    local = dt.datetime.combine(revenue_date, dt.time(0, 0), tzinfo=tz)
    return local.astimezone(dt.UTC)


def cutoff(revenue_date: dt.date, tz: ZoneInfo, freeze_hours: int) -> dt.datetime:
    """cutoff(D) = start of D in the business zone + freeze_hours (elapsed time)."""
    return date_start(revenue_date, tz) + dt.timedelta(hours=freeze_hours)


def anchor_date(
    data_interval_end: dt.datetime | None,
    logical_date: dt.datetime | None,
    tz: ZoneInfo,
) -> dt.date:
    """The newest revenue date a run covers: the business-zone day before the run's end.

    A scheduled run at 06:00 JST on day X has data_interval_end = X 06:00 and
    covers revenue date X-1. Manual and ``dag.test()`` runs can have a
    zero-width interval (start == end) or none at all; both fall back on the
    logical date, which gives the same answer for a scheduled run.
    """
    instant = data_interval_end or logical_date
    if instant is None:
        raise ValueError("a run needs a data interval, a logical date or an explicit revenue_date")
    if instant.tzinfo is None:
        raise ValueError(f"naive run instant {instant!r}")
    return instant.astimezone(tz).date() - dt.timedelta(days=1)


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
