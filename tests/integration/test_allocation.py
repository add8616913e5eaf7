"""allocation_final on the local stack: a frozen day split exactly, written once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue import allocation, calendar, freeze, pipeline
from ssp_revenue.allocate import load_rules, load_targets
from ssp_revenue.fx import CsvRates

from .conftest import Lake

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "include" / "config"
DAY = dt.date(2026, 11, 5)


def frozen_entry(env: Lake, emulator: Any, ssp: str) -> freeze.LedgerEntry:
    from ssp_revenue import registry

    cut = calendar.cutoff(DAY, env.settings.tz, 60)
    emulator.set_clock(cut - dt.timedelta(hours=1))
    config = registry.find(env.registry, ssp)
    pipeline.run_ssp(config, [DAY], env.connector(ssp=ssp), env.services)
    emulator.set_clock(cut + dt.timedelta(minutes=5))
    pipeline.run_ssp(config, [DAY], env.connector(ssp=ssp), env.services)
    entry = freeze.read_ledger(env.services.s3, env.settings.bucket, ssp, DAY)
    assert entry is not None
    return entry


@pytest.mark.parametrize("ssp", ["adpulse", "xchange"])
def test_a_frozen_day_is_allocated_to_the_yen_once(lake_env: Lake, emulator: Any, ssp: str) -> None:
    env = lake_env
    entry = frozen_entry(env, emulator, ssp)
    targets = load_targets(CONFIG / "allocation_targets.csv")
    book = load_rules(CONFIG / "allocation_rules.csv", targets)
    rates = CsvRates(CONFIG / "fx_rates.csv")
    s3, catalog = env.services.s3, env.services.catalog
    assert allocation.allocate_frozen(entry, book=book, rates=rates, s3=s3, catalog=catalog) == "written"
    assert allocation.allocate_frozen(entry, book=book, rates=rates, s3=s3, catalog=catalog) == "unchanged"
    other = dataclasses.replace(book, version="0" * 16)
    assert allocation.allocate_frozen(entry, book=other, rates=rates, s3=s3, catalog=catalog) == "kept"

    rows = env.engine().query(
        f"SELECT target, revenue_jpy, fx_rate FROM allocation_final WHERE ssp = '{ssp}'").rows
    rate = rates.rate(entry.currency, DAY)
    expected = (Decimal(entry.revenue) * rate).quantize(Decimal(1))
    assert sum(r[1] for r in rows) == expected
    assert all(r[1] >= 0 for r in rows) and {r[2] for r in rows} == {rate}
    assert len(env.keys("tables/allocation_final/")) == 1
