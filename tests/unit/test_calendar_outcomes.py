import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ssp_revenue import calendar
from ssp_revenue.errors import Reason
from ssp_revenue.outcomes import Severity, classify

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = dt.UTC


def test_cutoff_is_start_of_date_in_business_zone_plus_freeze_hours() -> None:
    cut = calendar.cutoff(dt.date(2026, 11, 5), TOKYO, 60)
    # 2026-11-05 00:00 JST = 2026-11-04 15:00 UTC; + 60 h = 2026-11-07 03:00 UTC
    assert cut == dt.datetime(2026, 11, 7, 3, 0, tzinfo=UTC)


def test_anchor_from_scheduled_interval_end() -> None:
    end = dt.datetime(2026, 11, 6, 6, 0, tzinfo=TOKYO)
    assert calendar.anchor_date(end, None, TOKYO) == dt.date(2026, 11, 5)


def test_anchor_falls_back_to_logical_date_when_no_interval() -> None:
    logical = dt.datetime(2026, 11, 5, 21, 0, tzinfo=UTC)  # 06:00 JST on the 6th
    assert calendar.anchor_date(None, logical, TOKYO) == dt.date(2026, 11, 5)


def test_anchor_needs_an_instant_and_refuses_naive_ones() -> None:
    with pytest.raises(ValueError):
        calendar.anchor_date(None, None, TOKYO)
    with pytest.raises(ValueError):
        calendar.anchor_date(dt.datetime(2026, 11, 6, 6), None, TOKYO)


def test_dates_due_is_the_window_ending_at_anchor() -> None:
    due = calendar.dates_due(dt.date(2026, 11, 5), 3)
    assert due == [dt.date(2026, 11, 3), dt.date(2026, 11, 4), dt.date(2026, 11, 5)]


@pytest.mark.parametrize(
    "reason",
    [Reason.DATA_NOT_READY, Reason.RATE_LIMITED, Reason.SERVER_ERROR, Reason.TIMEOUT,
     Reason.VALIDATION, Reason.MALFORMED],
)
def test_self_healing_reasons_converge_before_cutoff_and_alert_after(reason: Reason) -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    before = cut - dt.timedelta(seconds=1)
    assert classify(reason, now=before, cutoff=cut) is Severity.CONVERGING
    assert classify(reason, now=cut, cutoff=cut) is Severity.ACTIONABLE


@pytest.mark.parametrize("reason", [Reason.AUTH, Reason.SCHEMA_DRIFT])
def test_auth_and_schema_drift_are_always_actionable(reason: Reason) -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    assert classify(reason, now=cut - dt.timedelta(days=2), cutoff=cut) is Severity.ACTIONABLE
