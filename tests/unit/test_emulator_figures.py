import dataclasses
import datetime as dt

from ssp_emulator.figures import DEFAULT_PROFILES, figures, totals

P = DEFAULT_PROFILES["adpulse"]
DAY = dt.date(2026, 11, 5)
UTC = dt.UTC


def test_same_inputs_same_rows() -> None:
    at = dt.datetime(2026, 11, 8, tzinfo=UTC)
    assert figures(P, DAY, 1, at).equals(figures(P, DAY, 1, at))
    assert not figures(P, DAY, 2, at).equals(figures(P, DAY, 1, at))


def test_figures_are_restated_then_settle() -> None:
    end = P.date_end(DAY)
    early = totals(figures(P, DAY, 1, end + dt.timedelta(hours=4)))
    later = totals(figures(P, DAY, 1, end + dt.timedelta(hours=30)))
    settled = totals(figures(P, DAY, 1, end + dt.timedelta(hours=41)))
    much_later = totals(figures(P, DAY, 1, end + dt.timedelta(days=20)))
    assert early != later != settled
    assert settled == much_later


def test_grain_is_unique_at_any_size() -> None:
    big = dataclasses.replace(P, rows=5000)
    t = figures(big, DAY, 1, dt.datetime(2026, 11, 8, tzinfo=UTC))
    keys = set(zip(*(t[c].to_pylist() for c in ("site", "ad_unit_code", "country_code", "device_category")),
                   strict=True))
    assert len(keys) == 5000
