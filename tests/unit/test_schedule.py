"""Fetch chances: enough of them, spread out, before every cutoff, and only where due."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path

import pytest

from ssp_revenue.core import calendar, registry
from ssp_revenue.core.calendar import Availability
from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import schedule

SETTINGS = Settings()
SSPS = registry.load_registry(SETTINGS.config_dir / "ssps.yaml")
TZ = SETTINGS.tz


@pytest.mark.parametrize("config", SSPS, ids=lambda c: c.name)
def test_every_ssp_date_gets_three_spread_chances_after_its_data_and_before_its_cutoff(
        config: registry.SspConfig) -> None:
    for day in (dt.date(2026, 3, 7), dt.date(2026, 11, 5)):  # either side of US daylight saving
        ready = schedule.available_at(config, day, SETTINGS)
        cut = calendar.cutoff(day, TZ, SETTINGS.freeze_hours)
        chances = schedule.fetch_chances(config, day, SETTINGS)
        assert len(chances) == 3 and chances == sorted(chances)
        assert all(ready <= t <= cut - schedule.LAST_CHANCE_BEFORE_CUTOFF for t in chances)
        assert all(calendar.as_local(t, TZ).minute == 0 for t in chances)
        # Spread: no two within a quarter of the window, so one bad hour does not take them all.
        gaps = [b - a for a, b in itertools.pairwise(chances)]
        assert min(gaps) >= (cut - ready) / 4
        assert len(schedule.attempts_before_cutoff(config, day, SETTINGS)) >= 4


def test_an_ssp_ready_at_21_jst_still_gets_its_three_chances() -> None:
    late = dataclasses.replace(SSPS[0], name="ixlike", available_after="D+1 21:00 JST")
    day = dt.date(2026, 11, 5)
    chances = [calendar.as_local(t, TZ).strftime("%d %H:%M") for t in schedule.fetch_chances(late, day, SETTINGS)]
    assert chances == ["06 21:00", "07 02:00", "07 07:00"]


def test_too_late_an_availability_is_refused_naming_the_ssp() -> None:
    late = dataclasses.replace(SSPS[0], name="toolate", available_after="D+2 10:00")
    with pytest.raises(ValueError, match="toolate"):
        schedule.fetch_chances(late, dt.date(2026, 11, 5), SETTINGS)


def test_a_chance_run_fetches_only_the_pairs_whose_chance_it_is() -> None:
    day = dt.date(2026, 11, 5)
    for config in SSPS:
        for at in schedule.fetch_chances(config, day, SETTINGS):
            plan = schedule.chance_plan(at, SSPS, SETTINGS)
            assert day in plan[config.name]
            assert all(len(dates) <= 2 for dates in plan.values())  # never the 45-day window


def test_the_runs_of_a_day_are_one_daily_run_and_the_chance_times() -> None:
    start = calendar.date_start(dt.date(2026, 11, 10), TZ)
    runs = schedule.runs_between(start, start + dt.timedelta(days=1), SSPS, SETTINGS)
    assert [r.kind for r in runs].count("daily") == 1
    times = {calendar.as_local(r.due, TZ).time() for r in runs if r.kind == "chance"}
    assert times == set(schedule.chance_times(SSPS, SETTINGS))
    assert not any(schedule.is_daily_run(r.due, TZ) for r in runs if r.kind == "chance")


@pytest.mark.parametrize("text", ["D+1 8:00", "D1 08:00", "D+1 25:00", "D+1 08:00 Mars/Base"])
def test_a_bad_available_after_is_refused(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Availability.parse(text)
    body = (SETTINGS.config_dir / "ssps.yaml").read_text().replace("D+1 03:00 JST", text, 1)
    (tmp_path / "ssps.yaml").write_text(body)
    with pytest.raises(registry.RegistryError, match=r"ssps\[1\]"):
        registry.load_registry(tmp_path / "ssps.yaml")
