"""Real DAG runs with dag.test() on the simulated clock, against moto and the emulator."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.core.clock import EmulatorClock
from ssp_revenue.operate.query import LocalEngine
from ssp_revenue_airflow import local

pytestmark = pytest.mark.dags
DAY = dt.date(2026, 11, 5)


def totals_by_date(services: Any, ssp: str = "adpulse") -> dict[dt.date, tuple[int, Decimal]]:
    engine = LocalEngine(services.settings, services.catalog.glue, services.s3)
    result = engine.query("SELECT revenue_date, count(*), sum(revenue) FROM revenue "
                          f"WHERE ssp = '{ssp}' GROUP BY 1")
    return {row[0]: (row[1], row[2]) for row in result.rows}


def alerts() -> list[dict[str, Any]]:
    from ssp_revenue.operate.alerts import AlertLog

    return AlertLog(Path(os.environ["SSP_REVENUE_ALERTS_LOG"])).read()


def states(run: Any) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}


def test_a_bad_batch_converges_without_failing_the_run(
    daily_dag: Any, airflow_lake: Any, emulator: Any
) -> None:
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    emulator.fault("adpulse", "malformed_rows", date=DAY, times=1)
    run = local.run_day(daily_dag, DAY, clock)
    assert "success" in str(run.state), states(run)
    assert totals_by_date(airflow_lake) == {}
    assert alerts() == []  # converging: logged and kept in pipeline_events, no alert
    events = LocalEngine(airflow_lake.settings, airflow_lake.catalog.glue, airflow_lake.s3).query(
        "SELECT step, severity, reason FROM pipeline_events WHERE ssp = 'adpulse'").rows
    assert events == [("validate", "converging", "malformed_report")]
    keys = airflow_lake.s3.list_objects_v2(
        Bucket=airflow_lake.settings.bucket, Prefix="quarantine/")["KeyCount"]
    assert keys == 1


def test_revoked_credentials_fail_the_run_loudly(
    daily_dag: Any, airflow_lake: Any, emulator: Any
) -> None:
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    emulator.fault("adpulse", "revoked_credentials")
    run = local.run_day(daily_dag, DAY, clock)
    assert "failed" in str(run.state)
    assert states(run)["per_ssp.load[0]"].endswith("failed")  # adpulse: map index 0
    assert states(run)["per_ssp.load[1]"].endswith("success")  # xchange is not blocked
    assert [(a["event"], a["incident_id"]) for a in alerts()] == [("opened", "adpulse.auth.1")]
    assert DAY.isoformat() in alerts()[0]["dates"]
    # The next run sees the same problem: the incident is updated, nobody paged again.
    again = local.run_day(daily_dag, DAY, clock, minutes_after=30)
    assert "success" in str(again.state)
    assert len(alerts()) == 1


def test_a_missing_connection_opens_one_incident_naming_the_ssp_without_retries(
    daily_dag: Any, airflow_lake: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ssp_revenue.operate.alerts import LakeAlertLog

    monkeypatch.delenv("AIRFLOW_CONN_SSP_ADPULSE")
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    run = local.run_day(daily_dag, DAY, clock)
    assert "failed" in str(run.state)
    tis = {f"{ti.task_id}[{ti.map_index}]": ti for ti in run.get_task_instances()}
    assert str(tis["per_ssp.ingest[0]"].state).endswith("success")  # no retries: recorded, not raised
    assert str(tis["per_ssp.load[0]"].state).endswith("failed")
    assert tis["per_ssp.load[0]"].try_number == 1
    assert str(tis["per_ssp.load[1]"].state).endswith("success")  # xchange is not blocked
    sent = [(a["event"], a["ssp"], a["reason"]) for a in alerts()]
    assert sent == [("opened", "adpulse", "missing_connection")]
    assert DAY.isoformat() in alerts()[0]["dates"]
    shared = LakeAlertLog(airflow_lake.s3, airflow_lake.settings.bucket).read()
    assert [(a["ssp"], a["reason"]) for a in shared] == [("adpulse", "missing_connection")]


def two_days_match_truth(run: Any, services: Any, emulator: Any, at: dt.datetime) -> None:
    """After the first two runs: every task succeeded, the window ends at each run's revenue
    date and starts at the go-live date (DAY), and the figures are the emulator's."""
    assert all(s.endswith("success") for s in states(run).values())
    assert sorted(totals_by_date(services)) == [DAY, DAY + dt.timedelta(days=1)]
    for ssp in ("adpulse", "xchange"):
        published = totals_by_date(services, ssp)
        for day in (DAY, DAY + dt.timedelta(days=1)):
            truth = emulator.truth(ssp, day, at)
            assert published[day] == (truth["rows"], Decimal(truth["revenue_micros"]).scaleb(-6))


def frozen_and_allocated(services: Any) -> None:
    """After the first four runs: the first two dates are frozen, not the others, and the
    same runs allocated every frozen (SSP, date)."""
    engine = LocalEngine(services.settings, services.catalog.glue, services.s3)
    frozen = engine.query("SELECT DISTINCT revenue_date FROM revenue_final ORDER BY 1").rows
    assert frozen == [(DAY,), (DAY + dt.timedelta(days=1),)]  # D+2 12:00 JST has passed for both
    allocated = engine.query("SELECT revenue_date, ssp, sum(revenue_jpy) FROM allocation_final "
                             "GROUP BY 1, 2 ORDER BY 1, 2").rows
    final = engine.query("SELECT revenue_date, ssp, sum(revenue) FROM revenue_final "
                         "GROUP BY 1, 2 ORDER BY 1, 2").rows
    assert [r[:2] for r in allocated] == [r[:2] for r in final]


def test_six_daily_runs_with_every_ssp_publish_every_date_and_match_truth(
    daily_dag: Any, airflow_lake: Any, emulator: Any, monkeypatch: Any
) -> None:
    """Six daily runs, every SSP style, on the simulated clock: every (SSP, date) is
    published, dates past their cutoff are frozen, and each frozen figure equals the
    emulator's truth at the last fetch before its cutoff. Six runs are enough for each
    stage a date goes through: the first four dates pass their cutoff (frozen by the run
    two days later), the first two leave the 4-day window, the last two stay live.

    On the way, what fewer runs show: after the second run, two consecutive days publish
    the emulator's figures; after the fourth, freezing and allocation in the daily DAG."""
    from ssp_revenue.core import calendar, registry
    from ssp_revenue.core.settings import Settings

    monkeypatch.setenv("SSP_REVENUE_RESTATEMENT_ALERT_PCT", "50")
    monkeypatch.setenv("SSP_REVENUE_REFETCH_DAYS", "3")  # window = the 4-day adjustment horizon
    for ssp in ("adpulse", "gamnet"):
        emulator.profile(ssp, job_polls=0)  # report jobs finish at once: no polling sleeps
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    ssps = [s.name for s in registry.load_registry(Settings.from_env().config_dir / "ssps.yaml")]
    assert len(ssps) >= 4
    days = [DAY + dt.timedelta(days=n) for n in range(6)]
    fetched_at: dict[dt.date, list[dt.datetime]] = {}
    for n, day in enumerate(days, start=1):
        run = local.run_day(daily_dag, day, clock)
        assert "success" in str(run.state), states(run)
        for d in days:
            if d <= day:
                fetched_at.setdefault(d, []).append(clock.now())
        if n == 2:
            two_days_match_truth(run, airflow_lake, emulator, clock.now())
        if n == 4:
            frozen_and_allocated(airflow_lake)
    assert alerts() == []
    engine = LocalEngine(airflow_lake.settings, airflow_lake.catalog.glue, airflow_lake.s3)
    latest = {(r[0], r[1]): r[2] for r in engine.query(
        "SELECT ssp, revenue_date, sum(revenue) FROM revenue GROUP BY 1, 2").rows}
    # Every (SSP, date) is published; exports that come later in the day (nihon at 08:00
    # JST, dropzone's UTC day at 15:00 JST) are a day behind for the newest date.
    assert set(latest) >= {(s, d) for s in ssps for d in days[:-1]}
    assert {s for s, d in latest if d == days[-1]} >= {"adpulse", "xchange", "gamnet"}
    final = {(r[0], r[1]): (r[2], r[3]) for r in engine.query(
        "SELECT ssp, revenue_date, count(*), sum(revenue) FROM revenue_final GROUP BY 1, 2").rows}
    tz = airflow_lake.settings.tz
    now = clock.now()
    assert {d for s, d in final if s == "adpulse"} == set(days[:4])  # frozen 60 h on, not before
    for ssp in ssps:
        for day in days:
            cut = calendar.cutoff(day, tz, 60)
            if cut > now:
                assert (ssp, day) not in final
                continue
            at = max(t for t in fetched_at[day] if t <= cut)
            truth = emulator.truth(ssp, day, at)
            expected = Decimal(truth["revenue_micros"]).scaleb(-6)
            if ssp == "nihon":  # tax-inclusive yen: compare before the tax is stripped
                continue
            assert final[(ssp, day)] == (truth["rows"], expected), (ssp, day)
