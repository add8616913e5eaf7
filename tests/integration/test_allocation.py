"""allocation_final on the local stack: a frozen day split exactly, written once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.allocate import tables
from ssp_revenue.core import calendar
from ssp_revenue.finalize import freeze
from ssp_revenue.operate import pipeline

from .conftest import Lake

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "include" / "config"
DAY = dt.date(2026, 11, 5)


def frozen_entry(env: Lake, emulator: Any, ssp: str) -> freeze.LedgerEntry:
    from ssp_revenue.core import registry

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
    inputs = tables.AllocationInputs.from_config(CONFIG)
    s3, catalog = env.services.s3, env.services.catalog
    # run_ssp allocated it already, with the shipped rules.
    assert tables.allocate_frozen(entry, inputs=inputs, s3=s3, catalog=catalog) == "unchanged"
    other = dataclasses.replace(inputs, book=dataclasses.replace(inputs.book, version="0" * 16))
    assert tables.allocate_frozen(entry, inputs=other, s3=s3, catalog=catalog) == "kept"

    rows = env.engine().query(
        f"SELECT target, revenue_jpy, fx_rate, rules_version, source_version FROM allocation_final "
        f"WHERE ssp = '{ssp}'").rows
    rate = inputs.rates.rate(entry.currency, DAY)
    expected = (Decimal(entry.revenue) * rate).quantize(Decimal(1))
    assert sum(r[1] for r in rows) == expected
    assert all(r[1] >= 0 for r in rows) and {r[2] for r in rows} == {rate}
    assert {(r[3], r[4]) for r in rows} == {(inputs.book.version, entry.version)}
    assert len(env.keys("tables/allocation_final/")) == 1


def _rules(tmp_path: Path, extra: str) -> tables.AllocationInputs:
    config = tmp_path / "config"
    config.mkdir(parents=True)
    for name in ("allocation_targets.csv", "fx_rates.csv", "delivery_sample.csv"):
        (config / name).write_bytes((CONFIG / name).read_bytes())
    (config / "allocation_rules.csv").write_text((CONFIG / "allocation_rules.csv").read_text() + extra)
    return tables.AllocationInputs.from_config(config)


def test_recompute_writes_nothing_for_the_same_rules_and_a_recorded_version_for_new_ones(
    lake_env: Lake, emulator: Any, tmp_path: Path
) -> None:
    env = lake_env
    entry = frozen_entry(env, emulator, "nihon")
    s3, catalog = env.services.s3, env.services.catalog
    shipped = tables.AllocationInputs.from_config(CONFIG)
    before = env.keys("tables/")
    now = env.services.clock.now()

    same = tables.recompute(entry, inputs=shipped, s3=s3, catalog=catalog, now=now)
    assert same.state == "unchanged" and env.keys("tables/") == before

    # A rule for an effective date after DAY changes nothing for DAY: other rules, same yen.
    later = _rules(tmp_path / "a", "2026-12-01,*,news,*,partner:acme,100\n")
    assert tables.recompute(entry, inputs=later, s3=s3, catalog=catalog, now=now).state == "same_amounts"
    assert env.keys("tables/") == before

    moved = _rules(tmp_path / "b", "2026-11-01,*,news,*,partner:acme,100\n")
    result = tables.recompute(entry, inputs=moved, s3=s3, catalog=catalog, now=now)
    assert result.state == "recomputed" and result.previous_rules == shipped.book.version
    assert sum(result.delta.values()) == 0 and result.delta["partner:acme"] > 0
    assert "media:news" in result.delta

    engine = env.engine()
    totals = engine.query("SELECT rules_version, sum(revenue_jpy) FROM allocation_final "
                          "WHERE ssp = 'nihon' GROUP BY rules_version").rows
    assert [r[0] for r in totals] == [moved.book.version]
    assert totals[0][1] == Decimal(entry.revenue).quantize(Decimal(1))
    changes = engine.query("SELECT target, previous_jpy, revenue_jpy, delta_jpy, previous_rules_version "
                           "FROM allocation_changes WHERE ssp = 'nihon' ORDER BY target").rows
    assert {r[0]: int(r[3]) for r in changes if r[3]} == result.delta
    assert all(r[2] - r[1] == r[3] and r[4] == shipped.book.version for r in changes)
    # Both versions stay; recomputing again with the same new rules writes nothing more.
    written = env.keys("tables/")
    assert len([k for k in written if k.startswith("tables/allocation_final/")]) == 2
    assert tables.recompute(entry, inputs=moved, s3=s3, catalog=catalog, now=now).state == "unchanged"
    assert env.keys("tables/") == written


def test_a_missing_rate_keeps_the_date_out_converging_then_actionable(
    lake_env: Lake, emulator: Any, tmp_path: Path
) -> None:
    from ssp_revenue.allocate.delivery import CsvDelivery
    from ssp_revenue.allocate.fx import CsvRates
    from ssp_revenue.allocate.rules import load_rules, load_targets

    env = lake_env
    entry = frozen_entry(env, emulator, "xchange")  # USD
    catalog = env.services.catalog
    # Start again from no allocation: drop the partition run_ssp created.
    catalog.glue.delete_partition(DatabaseName=catalog.database, TableName="allocation_final",
                                  PartitionValues=[DAY.isoformat(), "xchange"])
    rates = tmp_path / "fx.csv"
    rates.write_text("date,currency,jpy_per_unit,source\n2026-11-04,USD,150,sample\n")
    inputs = tables.AllocationInputs(
        book=load_rules(CONFIG / "allocation_rules.csv", load_targets(CONFIG / "allocation_targets.csv")),
        rates=CsvRates(rates), delivery=CsvDelivery(CONFIG / "delivery_sample.csv"))
    job = pipeline.new_job("xchange", [DAY], {DAY})
    pipeline.allocate_step(job, env.services, inputs)
    assert [(o["step"], o["severity"], o["reason"]) for o in job["outcomes"]] == [
        ("allocate", "converging", "missing_reference_data")]
    assert "no USD/JPY rate for 2026-11-05" in job["outcomes"][0]["detail"]
    assert catalog.get_partition("allocation_final", DAY.isoformat(), "xchange") is None

    emulator.set_clock(entry.cutoff + env.settings.grace + dt.timedelta(minutes=1))
    late = pipeline.new_job("xchange", [DAY], {DAY})
    pipeline.allocate_step(late, env.services, inputs)
    assert [o["severity"] for o in late["outcomes"]] == ["actionable"]
