import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ssp_revenue.core import calendar
from ssp_revenue.core.errors import Reason
from ssp_revenue.operate.outcomes import Severity, classify

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = dt.UTC


def test_cutoff_is_start_of_date_in_business_zone_plus_freeze_hours() -> None:
    cut = calendar.cutoff(dt.date(2026, 11, 5), TOKYO, 60)
    # 2026-11-05 00:00 JST = 2026-11-04 15:00 UTC; + 60 h = 2026-11-07 03:00 UTC
    assert cut == dt.datetime(2026, 11, 7, 3, 0, tzinfo=UTC)


def test_the_run_for_a_revenue_date_is_the_schedulers_interval_starting_that_day() -> None:
    day = dt.date(2026, 11, 5)
    # logical date = data interval start = D 06:00 JST; due at the interval end, D+1 06:00 JST
    assert calendar.run_logical_date(day, TOKYO) == dt.datetime(2026, 11, 4, 21, 0, tzinfo=UTC)
    assert calendar.run_due(day, TOKYO) == dt.datetime(2026, 11, 5, 21, 0, tzinfo=UTC)
    assert calendar.revenue_date_of_logical_date(calendar.run_logical_date(day, TOKYO), TOKYO) == day
    assert calendar.RUN_CRON == "0 6 * * *"


def test_any_logical_date_stands_for_the_interval_it_falls_in() -> None:
    assert calendar.revenue_date_of_logical_date(
        dt.datetime(2026, 10, 28, 21, 0, tzinfo=UTC), TOKYO) == dt.date(2026, 10, 29)  # 06:00 JST
    assert calendar.revenue_date_of_logical_date(
        dt.datetime(2026, 10, 28, 20, 59, tzinfo=UTC), TOKYO) == dt.date(2026, 10, 28)  # 05:59 JST
    assert calendar.revenue_date_of_logical_date(
        dt.datetime(2026, 10, 29, 14, 0, tzinfo=UTC), TOKYO) == dt.date(2026, 10, 29)  # 23:00 JST


def test_airflows_pendulum_instants_give_the_same_dates() -> None:
    import pendulum

    logical = pendulum.datetime(2026, 10, 26, 21, tz="UTC")  # 10-27 06:00 JST, as the scheduler passes it
    assert calendar.revenue_date_of_logical_date(logical, TOKYO) == dt.date(2026, 10, 27)
    assert calendar.anchor_date(pendulum.datetime(2026, 10, 27, 22, tz="UTC"), TOKYO) == dt.date(2026, 10, 27)


def test_a_run_without_logical_date_covers_the_window_ending_yesterday() -> None:
    made = dt.datetime(2026, 11, 6, 7, 30, tzinfo=TOKYO)
    assert calendar.anchor_date(made, TOKYO) == dt.date(2026, 11, 5)


def test_run_instants_must_be_aware() -> None:
    with pytest.raises(ValueError):
        calendar.anchor_date(dt.datetime(2026, 11, 6, 6), TOKYO)
    with pytest.raises(ValueError):
        calendar.revenue_date_of_logical_date(dt.datetime(2026, 11, 6, 6), TOKYO)


def test_dates_due_is_the_window_ending_at_anchor() -> None:
    due = calendar.dates_due(dt.date(2026, 11, 5), 3)
    assert due == [dt.date(2026, 11, 3), dt.date(2026, 11, 4), dt.date(2026, 11, 5)]


TRANSIENT_REASONS = [Reason.DATA_NOT_READY, Reason.RATE_LIMITED, Reason.SERVER_ERROR, Reason.TIMEOUT,
                     Reason.VALIDATION, Reason.MALFORMED, Reason.WRONG_CURRENCY, Reason.STORAGE]
GRACE = dt.timedelta(hours=24)


@pytest.mark.parametrize("reason", TRANSIENT_REASONS)
def test_without_a_freezable_version_a_hiccup_converges_until_cutoff_plus_grace(reason: Reason) -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    assert classify(reason, now=cut - dt.timedelta(seconds=1), cutoff=cut, grace=GRACE) is Severity.CONVERGING
    # The first fetch after the cutoff (the same run freezes the date minutes later).
    assert classify(reason, now=cut + dt.timedelta(hours=18), cutoff=cut, grace=GRACE) is Severity.CONVERGING
    assert classify(reason, now=cut + GRACE, cutoff=cut, grace=GRACE) is Severity.ACTIONABLE


@pytest.mark.parametrize("reason", TRANSIENT_REASONS)
def test_with_a_freezable_version_a_hiccup_only_delays_an_adjustment(reason: Reason) -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    for later in (dt.timedelta(0), GRACE, dt.timedelta(days=44)):
        assert classify(reason, now=cut + later, cutoff=cut, grace=GRACE,
                        freezable=True) is Severity.CONVERGING


def test_no_version_at_the_cutoff_waits_out_the_grace_period_even_if_frozen_is_claimed() -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    reason = Reason.NO_VERSION_AT_CUTOFF
    assert classify(reason, now=cut, cutoff=cut, grace=GRACE) is Severity.CONVERGING
    assert classify(reason, now=cut + GRACE, cutoff=cut, grace=GRACE) is Severity.ACTIONABLE


@pytest.mark.parametrize("reason", [Reason.LATE_VERSION, Reason.LEDGER_MISMATCH, Reason.LARGE_RESTATEMENT,
                                    Reason.MISSING_CONNECTION, Reason.RULES])
def test_what_waiting_cannot_fix_is_actionable_whatever_the_date(reason: Reason) -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    assert classify(reason, now=cut - dt.timedelta(days=2), cutoff=cut, grace=GRACE,
                    freezable=True) is Severity.ACTIONABLE


@pytest.mark.parametrize("reason", [Reason.AUTH, Reason.SCHEMA_DRIFT])
def test_auth_and_schema_drift_are_always_actionable(reason: Reason) -> None:
    cut = dt.datetime(2026, 11, 7, 3, tzinfo=UTC)
    assert classify(reason, now=cut - dt.timedelta(days=2), cutoff=cut) is Severity.ACTIONABLE
