"""Freezing, adjustments and convergence on the real local stack (moto + emulator)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
from decimal import Decimal
from typing import Any

import pytest

from ssp_revenue.core import calendar
from ssp_revenue.finalize import adjustments, freeze
from ssp_revenue.operate import pipeline
from ssp_revenue.operate.incidents import IncidentBook, Problem

from .conftest import Lake, run_instant

pytestmark = pytest.mark.integration
UTC = dt.UTC
START = dt.date(2026, 11, 1)


def window(anchor: dt.date, days: int) -> list[dt.date]:
    return calendar.dates_due(anchor, days, start=START)


def daily_run(env: Lake, emulator: Any, day: dt.date, days: int = 4) -> dict[str, Any]:
    """What the daily DAG does for ``day``, at 06:05 JST the day after, in one process."""
    emulator.set_clock(run_instant(day))
    return pipeline.run_ssp(env.config, window(day, days), env.connector(), env.services)


def money(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def totals(env: Lake, sql: str) -> dict[dt.date, tuple[int, Decimal]]:
    return {r[0]: (r[1], r[2]) for r in env.engine().query(sql).rows}


def final_bytes(env: Lake, day: dt.date) -> bytes:
    entry = freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", day)
    assert entry is not None
    return env.services.s3.get_object(Bucket=env.settings.bucket,
                                      Key=freeze.final_key(entry))["Body"].read()


@pytest.fixture
def quiet_env(lake_settings: Any, emulator: Any) -> Lake:
    """Thresholds high enough that ordinary restatements raise no alert."""
    return Lake(dataclasses.replace(lake_settings, restatement_alert_pct=50.0,
                                    restatement_alert_jpy=10**12, adjustment_days=4, start_date=START))


def test_fourteen_day_replay_freezes_the_version_current_at_cutoff(quiet_env: Lake, emulator: Any) -> None:
    env = quiet_env
    frozen_bytes: dict[dt.date, bytes] = {}
    preliminary_seen: dict[dt.date, set[Decimal]] = {}
    for n in range(14):
        day = START + dt.timedelta(days=n)
        job = daily_run(env, emulator, day)
        pipeline.raise_if_actionable(job, env.services)  # nothing actionable in a normal fortnight
        for d, (_, revenue) in totals(env, "SELECT revenue_date, count(*), sum(revenue) FROM revenue GROUP BY 1").items():
            preliminary_seen.setdefault(d, set()).add(revenue)
        for d in freeze.frozen_dates(env.services.s3, env.settings.bucket, "adpulse"):
            body = final_bytes(env, d)
            assert frozen_bytes.setdefault(d, body) == body, f"revenue_final of {d} changed"

    final = totals(env, "SELECT revenue_date, count(*), sum(revenue) FROM revenue_final GROUP BY 1")
    tz = env.settings.tz
    assert sorted(final) == [START + dt.timedelta(days=n) for n in range(12)]  # D+2 12:00 passed
    for day, (rows, revenue) in final.items():
        cut = calendar.cutoff(day, tz, 60)
        fetches = [run_instant(day + dt.timedelta(days=k)) for k in range(0, 4)]
        last_before_cutoff = max(t for t in fetches if t <= cut)
        truth = emulator.truth("adpulse", day, last_before_cutoff)
        assert (rows, revenue) == (truth["rows"], money(truth["revenue_micros"])), day
        assert len(preliminary_seen[day]) > 1  # the preliminary table moved...
    # ...and what moved after the freeze is in the adjustments, never in revenue_final:
    adjusted = totals(env, "SELECT revenue_date, count(*), sum(revenue) FROM revenue_final_adjusted GROUP BY 1")
    latest = totals(env, "SELECT revenue_date, count(*), sum(revenue) FROM revenue GROUP BY 1")
    for day in final:
        assert adjusted[day][1] == latest[day][1], day
    assert env.engine().query("SELECT count(*) FROM revenue_adjustments").rows[0][0] > 0
    status = dict(env.engine().query(
        "SELECT status, count(DISTINCT revenue_date) FROM revenue_status GROUP BY 1").rows)
    assert status == {"final": 12, "preliminary": 2}


def fetched_before_a_restatement_at_cutoff(env: Lake, emulator: Any) -> tuple[dt.date, dt.datetime]:
    """START fetched 6 h before its cutoff; its figures restate exactly at the cutoff
    (36 h after the end of the JST date)."""
    cut = calendar.cutoff(START, env.settings.tz, 60)
    emulator.profile("adpulse", restatement_hours=[36.0])
    emulator.set_clock(cut - dt.timedelta(hours=6))
    pipeline.run_ssp(env.config, [START], env.connector(), env.services)
    return START, cut


def test_boundary_fetched_exactly_at_cutoff_is_frozen_one_second_later_is_not(
    lake_env: Lake, emulator: Any
) -> None:
    env = lake_env
    day, cut = fetched_before_a_restatement_at_cutoff(env, emulator)
    before = emulator.truth("adpulse", day, cut - dt.timedelta(seconds=1))
    at_cut = emulator.truth("adpulse", day, cut)
    assert before != at_cut

    emulator.set_clock(cut)
    job = pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    assert any(o["step"] == "freeze" and "froze" in o["detail"] for o in job["outcomes"])
    entry = freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", day)
    assert entry is not None and entry.fetched_at == cut
    assert Decimal(entry.revenue) == money(at_cut["revenue_micros"])


def test_one_second_after_cutoff_is_not_frozen(lake_env: Lake, emulator: Any) -> None:
    env = lake_env
    day, cut = fetched_before_a_restatement_at_cutoff(env, emulator)
    early = emulator.truth("adpulse", day, cut - dt.timedelta(hours=6))

    emulator.set_clock(cut + dt.timedelta(seconds=1))
    job = pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    entry = freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", day)
    assert entry is not None and entry.fetched_at == cut - dt.timedelta(hours=6)
    assert Decimal(entry.revenue) == money(early["revenue_micros"])
    # The version fetched one second late is an adjustment, equal to the delta.
    later = emulator.truth("adpulse", day, cut + dt.timedelta(seconds=1))
    [adjusted] = [o for o in job["outcomes"] if o["step"] == "adjust"]
    expected = money(later["revenue_micros"]) - money(early["revenue_micros"])
    assert f"revenue {expected:+}" in adjusted["detail"]


def test_restatement_after_freeze_is_booked_once_and_final_is_untouched(
    lake_env: Lake, emulator: Any
) -> None:
    env = Lake(dataclasses.replace(lake_env.settings, restatement_alert_pct=0.5))
    day = START
    cut = calendar.cutoff(day, env.settings.tz, 60)
    emulator.set_clock(cut - dt.timedelta(hours=1))
    pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    emulator.set_clock(cut + dt.timedelta(minutes=5))
    pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    body = final_bytes(env, day)
    frozen = emulator.truth("adpulse", day, cut - dt.timedelta(hours=1))

    later = cut + dt.timedelta(days=2)  # the 40 h restatement has happened
    emulator.set_clock(later)
    job = pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    assert [i.problem.reason for i in pipeline.settle(job, env.services).opened] == ["large_restatement"]
    emulator.set_clock(later + dt.timedelta(hours=1))
    job = pipeline.run_ssp(env.config, [day], env.connector(), env.services)  # seen again
    pipeline.settle(job, env.services)
    assert not [o for o in job["outcomes"] if o["step"] == "adjust"]
    assert job["notices"] == []  # the large restatement is one incident, not a page per run

    truth = emulator.truth("adpulse", day, later)
    rows = env.engine().query(
        "SELECT sum(revenue_delta), count(DISTINCT sequence) FROM revenue_adjustments").rows[0]
    assert rows == (money(truth["revenue_micros"]) - money(frozen["revenue_micros"]), 1)
    assert final_bytes(env, day) == body
    # Per key: frozen + delta = latest.
    mismatches = env.engine().query(
        "SELECT count(*) FROM revenue_final_adjusted a JOIN revenue r USING (revenue_date, ssp, media, ad_unit, country, device) "
        "WHERE a.revenue <> r.revenue OR a.impressions <> r.impressions").rows[0][0]
    assert mismatches == 0


def test_rerunning_the_freeze_changes_nothing(lake_env: Lake, emulator: Any) -> None:
    env = lake_env
    day = START
    cut = calendar.cutoff(day, env.settings.tz, 60)
    emulator.set_clock(cut - dt.timedelta(hours=1))
    pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    results = [freeze.freeze_date("adpulse", day, settings=env.settings, s3=env.services.s3,
                                  catalog=env.services.catalog, now=cut + dt.timedelta(hours=h))
               for h in (1, 5)]
    assert [r.state for r in results] == ["frozen", "already_frozen"]
    assert results[0].entry == results[1].entry
    assert len(env.keys("ledger/")) == 1 and len(env.keys("tables/revenue_final/")) == 1


def _freeze_in_process(settings: Any, day: dt.date, now: dt.datetime, barrier: Any, out: Any) -> None:
    from ssp_revenue.operate import runtime

    services = runtime.services_for(settings)
    barrier.wait()
    result = freeze.freeze_date("adpulse", day, settings=settings, s3=services.s3,
                                catalog=services.catalog, now=now)
    out.put((result.state, result.entry.finalized_at.isoformat() if result.entry else None))


def test_two_concurrent_freezes_give_one_ledger_entry_and_identical_tables(
    lake_env: Lake, emulator: Any
) -> None:
    env = lake_env
    day = START
    cut = calendar.cutoff(day, env.settings.tz, 60)
    emulator.set_clock(cut - dt.timedelta(hours=1))
    pipeline.run_ssp(env.config, [day], env.connector(), env.services)

    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    procs = [context.Process(target=_freeze_in_process,
                             args=(env.settings, day, cut + dt.timedelta(minutes=m), barrier, out))
             for m in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = sorted(out.get(timeout=5) for _ in procs)
    assert [r[0] for r in results] == ["already_frozen", "frozen"]
    assert results[0][1] == results[1][1]  # both wrote from the winner's ledger entry
    assert len(env.keys("ledger/finalized/")) == 1
    assert len(env.keys("tables/revenue_final/")) == 1
    [partition] = env.services.catalog.partitions("revenue_final")
    entry = freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", day)
    assert partition.parameters == freeze.partition_parameters(entry)


def test_scheduler_down_for_one_day_heals_without_alert(quiet_env: Lake, emulator: Any) -> None:
    env = quiet_env
    missed = {START + dt.timedelta(days=3)}
    for n in range(7):
        day = START + dt.timedelta(days=n)
        if day in missed:
            continue
        job = daily_run(env, emulator, day)
        pipeline.settle(job, env.services)
        assert job["notices"] == [], job["notices"]
    frozen = freeze.frozen_dates(env.services.s3, env.settings.bucket, "adpulse")
    assert frozen == {START + dt.timedelta(days=n) for n in range(5)}
    entries = [freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", d) for d in frozen]
    assert not any(e.late for e in entries if e)


def test_two_missed_runs_freeze_one_date_late_with_exactly_one_incident(quiet_env: Lake, emulator: Any) -> None:
    """Runs at D+1 and D+2 are a date's only chances before its 60 h cutoff."""
    env = quiet_env
    missed = {START + dt.timedelta(days=2), START + dt.timedelta(days=3)}  # runs on the 4th and 5th
    alerts = []
    for n in range(8):
        day = START + dt.timedelta(days=n)
        if day in missed:
            continue
        job = daily_run(env, emulator, day)
        pipeline.settle(job, env.services)
        alerts += [n for n in job["notices"] if n["event"] == "opened"]
    late_day = START + dt.timedelta(days=2)
    assert [(a["revenue_date"], a["reason"]) for a in alerts] == [(late_day.isoformat(), "late_version")]
    entry = freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", late_day)
    assert entry is not None and entry.late


def test_down_past_cutoff_and_grace_opens_one_incident_per_date(quiet_env: Lake, emulator: Any) -> None:
    env = quiet_env
    daily_run(env, emulator, START)
    # Down for five days; a run comes back when START+1 .. START+3 are past cutoff + grace.
    alerts = []
    for day in (START + dt.timedelta(days=6), START + dt.timedelta(days=7)):
        emulator.set_clock(run_instant(day))
        dates = calendar.dates_due(day, 8, start=START)
        job = pipeline.run_ssp(env.config, dates, env.connector(), env.services)
        pipeline.settle(job, env.services)
        alerts += [n for n in job["notices"] if n["event"] == "opened"]
    missing = sorted(a["revenue_date"] for a in alerts if a["reason"] == "no_version_at_cutoff")
    assert missing == [(START + dt.timedelta(days=n)).isoformat() for n in (1, 2, 3)]
    # The date whose grace period the returning run falls in is frozen late instead.
    late = [a["revenue_date"] for a in alerts if a["reason"] == "late_version"]
    assert late == [(START + dt.timedelta(days=4)).isoformat()]
    assert len(alerts) == 4  # and nothing twice, though the second run saw them all again
    book = IncidentBook(env.services.s3, env.settings.bucket)
    problem = Problem("adpulse", "no_version_at_cutoff", START + dt.timedelta(days=1))
    assert [(i.problem, i.is_open) for i in book.history("adpulse") if i.problem == problem] == [(problem, True)]


def test_delta_includes_keys_that_appear_or_vanish() -> None:
    from tests.unit.helpers import rows, table

    old = table(rows(3))
    new_rows = rows(3)[1:] + rows(4)[3:]
    new_rows[0]["revenue"] += Decimal("1.5")
    result = adjustments.delta(old, table(new_rows)).to_pylist()
    by_unit = {r["ad_unit"]: r["revenue_delta"] for r in result}
    assert by_unit == {"u0": -rows(3)[0]["revenue"], "u1": Decimal("1.5"), "u3": rows(4)[3]["revenue"]}


def test_a_table_that_disagrees_with_the_ledger_is_reported_not_rewritten(
    lake_env: Lake, emulator: Any
) -> None:
    env = lake_env
    day = START
    cut = calendar.cutoff(day, env.settings.tz, 60)
    emulator.set_clock(cut - dt.timedelta(hours=1))
    pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    freeze.freeze_date("adpulse", day, settings=env.settings, s3=env.services.s3,
                       catalog=env.services.catalog, now=cut)
    # A mistaken operator points the frozen partition somewhere else.
    glue = env.services.catalog.glue
    found = env.services.catalog.get_partition("revenue_final", day.isoformat(), "adpulse")
    assert found is not None
    tampered = found.location.replace("version=", "version=0000")
    glue.update_partition(
        DatabaseName=env.settings.glue_database, TableName="revenue_final",
        PartitionValueList=[day.isoformat(), "adpulse"],
        PartitionInput={"Values": [day.isoformat(), "adpulse"],
                        "StorageDescriptor": {"Location": tampered}, "Parameters": found.parameters})
    emulator.set_clock(cut + dt.timedelta(hours=2))
    job = pipeline.run_ssp(env.config, [day], env.connector(), env.services)
    [problem] = [o for o in job["outcomes"] if o["step"] == "freeze"]
    assert (problem["reason"], problem["severity"]) == ("ledger_mismatch", "actionable")
    after = env.services.catalog.get_partition("revenue_final", day.isoformat(), "adpulse")
    assert after is not None and after.location == tampered  # reported, not silently rewritten
