"""The daily and monthly DAGs under Airflow's real scheduler, Celery worker and PostgreSQL.

One deployment, one sequence, in the order an operator lives it: three
scheduled runs (catchup from the go-live date), a manual trigger by logical
date, a backfill over a range that includes dates already run (with the
Celery worker SIGKILLed in the middle of a publish and the scheduler's retry
finishing the job), a rerun that moves nothing, the monthly close, then the
same sequence through dag.test() on a lake of its own (under pytest-xdist on
another worker, while the topology runs): both lakes must hold the same
partitions, versions and ledger entries. Last, a revoked credential
alerts once, without retries, naming the SSP and its dates.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import pytest

from ssp_revenue.core import calendar
from ssp_revenue_airflow.local import lake_snapshot as snapshot

from . import reference
from .conftest import FIRST, Deployment, pipeline_environment
from .reference import BACKFILL_FROM, BACKFILL_TO, CLOSE_AT, MANUAL, SEQUENCE, TOKYO

pytestmark = pytest.mark.scheduler
KILLED = dt.date(2026, 11, 1)


def lake_services(bucket: str) -> Any:
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import runtime
    from ssp_revenue_airflow import local

    from ..conftest import LOCAL

    env = {**os.environ, **local.stack_environment(LOCAL / "stack.json"), **pipeline_environment(bucket)}
    return runtime.services_for(Settings.from_env(env))


def published_dates(services: Any) -> set[str]:
    return {p.revenue_date for p in services.catalog.partitions("revenue")}


def test_three_scheduled_runs_freeze_and_allocate(deployment: Deployment) -> None:
    deployment.wait_for_dag("ssp_revenue_daily")
    started = time.monotonic()
    deployment.cli("dags", "unpause", "ssp_revenue_daily")
    runs = deployment.wait_for_runs(deployment.DAILY, 3)
    took = time.monotonic() - started
    assert [r["run_type"] for r in runs] == ["scheduled"] * 3
    assert [r["state"] for r in runs] == ["success"] * 3, [deployment.task_states(r["run_id"]) for r in runs]
    days = [FIRST + dt.timedelta(days=n) for n in range(3)]
    assert [r["logical_date"] for r in runs] == [calendar.run_logical_date(d, TOKYO) for d in days]
    assert [r["interval_end"] for r in runs] == [calendar.run_due(d, TOKYO) for d in days]
    services = lake_services(deployment.bucket)
    assert published_dates(services) == {d.isoformat() for d in days}
    # The third run (10-29, at 10-30 06:05) is past cutoff(10-27) = 10-29 12:00: frozen and allocated.
    final = {p.revenue_date for p in services.catalog.partitions("revenue_final")}
    assert final == {FIRST.isoformat()}
    assert {p.revenue_date for p in services.catalog.partitions("allocation_final")} == final
    per_task = deployment.sql(
        "SELECT task_id, count(*), avg(extract(epoch FROM end_date - start_date)) FROM task_instance "
        "WHERE dag_id = 'ssp_revenue_daily' GROUP BY task_id ORDER BY task_id")
    print(f"\nthree scheduled runs under the real scheduler: {took:.1f}s; per task (count, mean s): "
          + ", ".join(f"{t} {n} {float(d):.1f}" for t, n, d in per_task))


def test_a_manual_trigger_by_logical_date_processes_that_date(deployment: Deployment) -> None:
    # The operator extends the DAG by a day without catchup (a deploy: the dag-processor,
    # scheduler and worker restart with the new settings), then triggers that day by hand.
    deployment.cli("dags", "pause", "ssp_revenue_daily")
    versions = deployment.dag_versions("ssp_revenue_daily")
    deployment.reconfigure({"SSP_REVENUE_END_DATE": MANUAL.isoformat(), "SSP_REVENUE_CATCHUP": "false"})
    deployment.wait_for_new_version("ssp_revenue_daily", versions)
    # The runbook's form: the logical date is the date's interval start, D 06:00 JST, so a
    # later backfill sees the date as taken. Airflow infers the run's data interval from
    # the wall clock, which must not matter.
    deployment.trigger("ssp_revenue_daily", logical_date=calendar.run_logical_date(MANUAL, TOKYO))
    deployment.cli("dags", "unpause", "ssp_revenue_daily")
    runs = deployment.wait_for_runs(deployment.DAILY, 4)
    assert len(runs) == 4  # the scheduler made no run of its own for the manual run's date
    assert runs[-1]["run_type"] == "manual" and runs[-1]["state"] == "success"
    assert runs[-1]["interval_end"] != calendar.run_due(MANUAL, TOKYO)  # the wall clock's, ignored
    services = lake_services(deployment.bucket)
    assert MANUAL.isoformat() in published_dates(services)
    ledger = {p.revenue_date for p in services.catalog.partitions("revenue_final")}
    assert ledger == {FIRST.isoformat(), (FIRST + dt.timedelta(days=1)).isoformat()}


def _kill_worker_mid_load(deployment: Deployment, run_id_hint: str, seconds: float = 600) -> str:
    """SIGKILL the Celery worker (and its task processes) while the load (publish, freeze) of ``KILLED`` runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = deployment.sql(
            "SELECT ti.run_id FROM task_instance ti JOIN dag_run dr ON dr.run_id = ti.run_id "
            "AND dr.dag_id = ti.dag_id WHERE ti.dag_id = 'ssp_revenue_daily' "
            "AND ti.task_id = 'per_ssp.load' AND ti.state = 'running' AND dr.logical_date = %s",
            calendar.run_logical_date(KILLED, TOKYO))
        if rows:
            deployment.kill("worker")
            time.sleep(2)
            deployment.restart("worker")
            return str(rows[0][0])
        time.sleep(0.1)  # a load only switches staged versions: it runs for well under a second
    raise AssertionError(f"no load of {KILLED} ran within {seconds:.0f}s ({run_id_hint})")


@pytest.mark.timeout(1500)
def test_a_backfill_over_run_dates_fills_only_the_gaps_and_survives_a_worker_kill(
    deployment: Deployment,
) -> None:
    def at_six(day: dt.date) -> str:  # the runbook's form: the interval start in JST, not UTC midnight
        return dt.datetime.combine(day, calendar.RUN_TIME, tzinfo=TOKYO).isoformat()

    deployment.cli("backfill", "create", "--dag-id", "ssp_revenue_daily",
                       "--from-date", at_six(BACKFILL_FROM), "--to-date", at_six(BACKFILL_TO),
                       "--max-active-runs", "1")
    killed_run = _kill_worker_mid_load(deployment, "backfill")
    runs = deployment.wait_for_runs(deployment.DAILY, 7, seconds=1200)
    backfilled = [r for r in runs if r["run_type"] == "backfill"]
    new_dates = [dt.date(2026, 10, 31), dt.date(2026, 11, 1), BACKFILL_TO]
    assert [r["logical_date"] for r in backfilled] == [calendar.run_logical_date(d, TOKYO) for d in new_dates]
    assert all(r["state"] == "success" for r in runs), [(r["run_id"], r["state"]) for r in runs]
    tries = {(t[0], t[1]): t[3] for t in deployment.task_states(killed_run)}
    assert max(tries.values()) >= 2, tries  # the killed task was retried by the scheduler
    services = lake_services(deployment.bucket)
    assert published_dates(services) == {d.isoformat() for d in SEQUENCE}
    frozen = {p.revenue_date for p in services.catalog.partitions("revenue_final")}
    assert frozen == {d.isoformat() for d in SEQUENCE[:-2]}  # all but the last two (cutoff not yet)


def test_a_rerun_moves_no_partition(deployment: Deployment) -> None:
    services = lake_services(deployment.bucket)
    before = snapshot(services)
    deployment.trigger("ssp_revenue_daily", conf={"revenue_date": BACKFILL_TO.isoformat()})
    runs = deployment.wait_for_runs(deployment.DAILY, 8)
    assert runs[-1]["state"] == "success"
    assert snapshot(services) == before


def test_the_monthly_close_closes_october(deployment: Deployment) -> None:
    # Its schedule ends with the close of SSP_REVENUE_END_DATE's month (October, set by the
    # deploy above): unpaused, the scheduler makes exactly that run, 2026-11-03 09:00 JST.
    deployment.wait_for_dag("ssp_revenue_monthly_close")
    deployment.cli("dags", "unpause", "ssp_revenue_monthly_close")
    runs = deployment.wait_for_runs("ssp_revenue_monthly_close", 1)
    assert [r["run_type"] for r in runs] == ["scheduled"]
    assert runs[0]["logical_date"] == CLOSE_AT
    assert runs[-1]["state"] == "success", deployment.task_states(runs[-1]["run_id"], "ssp_revenue_monthly_close")
    services = lake_services(deployment.bucket)
    assert snapshot(services)["closes"]


def test_the_same_sequence_through_dag_test_gives_the_same_lake(
    deployment: Deployment, emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    request: pytest.FixtureRequest,
) -> None:
    """dag.test(), the same runs at the same simulated instants, another bucket: on another
    pytest-xdist worker while the topology ran (tests/scheduler/reference.py), or here."""
    theirs = reference.portable(snapshot(lake_services(deployment.bucket)))
    if request.config.stash.get(reference.ELSEWHERE, False):
        ours = reference.wait_for_reference()
    else:
        ours = reference.through_dag_test(monkeypatch, tmp_path)
    assert ours["snapshot"]["tables"] == theirs["tables"]
    assert ours["snapshot"]["ledger"].keys() == theirs["ledger"].keys()
    for key, entry in ours["snapshot"]["ledger"].items():
        assert entry == theirs["ledger"][key], key
    assert ours["snapshot"]["closes"].keys() == theirs["closes"].keys()
    print(f"\nthe same {len(SEQUENCE)} daily runs through dag.test(): {ours['seconds']:.1f}s")


def test_revoked_credentials_open_one_incident_without_retries(deployment: Deployment, emulator: Any) -> None:
    from ssp_revenue.operate.alerts import LakeAlertLog

    emulator.fault("adpulse", "revoked_credentials")
    deployment.trigger("ssp_revenue_daily", conf={"revenue_date": BACKFILL_TO.isoformat()})
    runs = deployment.wait_for_runs(deployment.DAILY, 9)
    assert runs[-1]["state"] == "failed"
    states = deployment.task_states(runs[-1]["run_id"])
    failed = [t for t in states if t[2] == "failed"]
    assert [t[0] for t in failed] == ["per_ssp.load"], states
    assert failed[0][3] == 1  # an ActionableAlert is not retried
    services = lake_services(deployment.bucket)
    notices = LakeAlertLog(services.s3, deployment.bucket).read()
    # One page for the SSP's credentials, listing every date of the window, not one per date.
    assert [(n["event"], n["incident_id"]) for n in notices] == [("opened", "adpulse.auth.1")]
    assert len(notices[0]["dates"]) == int(pipeline_environment(deployment.bucket)["SSP_REVENUE_ADJUSTMENT_DAYS"])
    assert notices[0]["runbook"] == "docs/runbook.md#auth"
