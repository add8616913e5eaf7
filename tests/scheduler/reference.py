"""The topology sequence through dag.test(): the lake the real scheduler's must equal.

It needs no Airflow process but its own metadata DB, so under pytest-xdist it runs
on another worker (``tests/dags/test_scheduler_reference.py``), on that worker's
stack, while the topology runs; the topology test then reads its snapshot from a
file. Run alone, or in one process, the topology test computes it itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ..conftest import LOCAL, ROOT
from .conftest import FIRST, LAST, pipeline_environment

TOKYO = ZoneInfo("Asia/Tokyo")
MANUAL = LAST + dt.timedelta(days=1)          # 10-30, by logical date
BACKFILL_FROM = FIRST + dt.timedelta(days=1)  # 10-28: already run by the scheduler
BACKFILL_TO = dt.date(2026, 11, 2)            # 10-31, 11-01 and 11-02 are new
SEQUENCE = [FIRST + dt.timedelta(days=n) for n in range((BACKFILL_TO - FIRST).days + 1)]
CLOSE_AT = dt.datetime(2026, 11, 3, 9, 0, tzinfo=TOKYO)
NODEID = "tests/dags/test_scheduler_reference.py::test_the_topology_sequence_through_dag_test"
ELSEWHERE = pytest.StashKey[bool]()  # set by tests/conftest.py: the reference runs on another worker
WAIT = 40 * 60.0


def snapshot_file() -> Path:
    """Shared by this run's workers (pytest-xdist gives them one run id)."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "serial")
    return ROOT / ".local" / "test" / f"reference-{run}.json"


def portable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A lake snapshot as JSON can hold it (partition keys as text)."""
    return json.loads(json.dumps({
        "tables": {t: {f"{d}|{s}": loc for (d, s), loc in parts.items()}
                   for t, parts in snapshot["tables"].items()},
        "ledger": snapshot["ledger"], "closes": snapshot["closes"]}, sort_keys=True, default=str))


def through_dag_test(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """dag.test() in this process, the topology's runs at the same simulated instants, a bucket
    of its own on this worker's stack; its portable snapshot and how long the runs took."""
    from airflow.dag_processing.dagbag import DagBag

    from ssp_revenue.core.clock import EmulatorClock
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import runtime
    from ssp_revenue_airflow import local

    bucket = f"t-{uuid.uuid4().hex[:10]}"
    for key, value in {**local.stack_environment(LOCAL / "stack.json"),
                       **pipeline_environment(bucket),
                       "SSP_REVENUE_ALERTS_LOG": str(tmp_path / "alerts.jsonl")}.items():
        monkeypatch.setenv(key, value)
    local.migrate_db(dict(os.environ))
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    daily, monthly = bag.get_dag("ssp_revenue_daily"), bag.get_dag("ssp_revenue_monthly_close")
    clock = EmulatorClock(json.loads((LOCAL / "stack.json").read_text())["emulator_url"])
    started = time.monotonic()
    for day in SEQUENCE:
        run = local.run_day(daily, day, clock)
        assert "success" in str(run.state), day
    took = time.monotonic() - started
    clock.set(CLOSE_AT.astimezone(dt.UTC) + dt.timedelta(minutes=5))
    close = monthly.test(logical_date=CLOSE_AT, run_after=CLOSE_AT)  # closes the month before: 2026-10
    assert "success" in str(close.state)
    services = runtime.services_for(Settings.from_env(dict(os.environ)))
    return {"snapshot": portable(local.lake_snapshot(services)), "seconds": took}


def wait_for_reference() -> dict[str, Any]:
    """The snapshot another worker's reference test writes."""
    path = snapshot_file()
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"no reference snapshot at {path} after {WAIT:.0f}s"
        time.sleep(2)
    reference: dict[str, Any] = json.loads(path.read_text())
    assert "error" not in reference, f"the reference run failed: {reference['error']}"
    return reference
