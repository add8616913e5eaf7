"""Two DAG runs for the same date at the same time, each with its own Airflow (two schedulers,
two metadata DBs) against one lake: one result, one ledger entry per (SSP, date), one alert."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess  # nosec B404: the two racing runs
import sys
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.finalize import freeze
from ssp_revenue.operate import runtime
from ssp_revenue.operate.query import LocalEngine
from ssp_revenue_airflow import local

from ..conftest import ROOT
from .conftest import run_every_ssp

pytestmark = pytest.mark.dags
DAY = dt.date(2026, 11, 5)


def seed(services: Any, emulator: Any, revenue_date: dt.date) -> None:
    """The daily steps of an earlier run, in this process."""
    at = local.run_instant(revenue_date) + dt.timedelta(minutes=5)
    run_every_ssp(services, emulator, at, [DAY, DAY + dt.timedelta(days=1)])


def test_two_dag_runs_for_the_same_date_at_once_give_one_result(
    airflow_lake: Any, emulator: Any, tmp_path: Path
) -> None:
    services = airflow_lake
    runtime.bootstrap(services)
    seed(services, emulator, DAY)
    seed(services, emulator, DAY + dt.timedelta(days=1))

    # The run for DAY+2 (at DAY+3 06:05) freezes DAY: both runs race for each SSP's ledger entry.
    db = Path(os.environ["AIRFLOW_HOME"]) / "airflow.db"
    children = []
    for name in ("a", "b"):
        home = tmp_path / name / "airflow"
        home.mkdir(parents=True)
        shutil.copy(db, home / "airflow.db")
        (home / ".migrated").touch()
        env = {**os.environ, **local.airflow_environment(tmp_path / name)}
        children.append(subprocess.Popen(  # nosec B603: this interpreter, a module of the suite
            [sys.executable, "-m", "tests.dags.race_child", (DAY + dt.timedelta(days=2)).isoformat()],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [child.communicate(timeout=600)[0] for child in children]
    states = [next((line for line in out.splitlines() if line.startswith("STATE ")), out[-2000:])
              for out in outputs]
    assert states == ["STATE success", "STATE success"], states

    settings = services.settings
    names = [c.name for c in registry.load_registry(settings.config_dir / "ssps.yaml")]
    engine = LocalEngine(settings, services.catalog.glue, services.s3)
    for ssp in names:
        assert freeze.frozen_dates(services.s3, settings.bucket, ssp) == {DAY}
        for day in (DAY,):
            entry = freeze.read_ledger(services.s3, settings.bucket, ssp, day)
            assert entry is not None
            part = services.catalog.get_partition("revenue_final", day.isoformat(), ssp)
            assert part is not None and part.parameters == freeze.partition_parameters(entry)
    final = engine.query("SELECT ssp, revenue_date, count(DISTINCT source_version), count(*) "
                         "FROM revenue_final GROUP BY 1, 2").rows
    assert len(final) == len(names) and all(r[2] == 1 for r in final)
    allocated = engine.query("SELECT ssp, revenue_date, count(DISTINCT rules_version) "
                             "FROM allocation_final GROUP BY 1, 2").rows
    assert len(allocated) == len(names) and all(r[2] == 1 for r in allocated)
    # Both runs fetched at the same instant: each publish is logged once, not twice.
    logged = engine.query("SELECT ssp, revenue_date, fetched_at, version, count(*) FROM publish_log "
                          "GROUP BY 1, 2, 3, 4 HAVING count(*) > 1").rows
    assert logged == []
    from ssp_revenue.operate.alerts import AlertLog

    alerts = AlertLog(Path(os.environ["SSP_REVENUE_ALERTS_LOG"])).read()
    keys = [(a["incident_id"], a["event"]) for a in alerts]
    assert len(keys) == len(set(keys)), "an incident was paged by both runs"
