"""The production topology (PostgreSQL, Redis, api-server, scheduler, dag-processor,
triggerer, Celery worker), started by the project's own code for these tests."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ssp_revenue_airflow.topology import AirflowTopology

from ..conftest import LOCAL

# The scheduled runs are for these revenue dates: the DAG starts at FIRST (its
# go-live) and ends at LAST, with catchup, so the scheduler makes exactly three.
FIRST = dt.date(2026, 10, 27)
LAST = dt.date(2026, 10, 29)


def pipeline_environment(bucket: str) -> dict[str, str]:
    """Settings both harnesses run with: the scheduler's processes and the dag.test() path."""
    return {
        "SSP_REVENUE_BUCKET": bucket,
        "SSP_REVENUE_GLUE_DATABASE": bucket.replace("-", "_"),
        "SSP_REVENUE_START_DATE": FIRST.isoformat(),
        "SSP_REVENUE_REFETCH_DAYS": "4",
        "SSP_REVENUE_ADJUSTMENT_DAYS": "4",
    }


class Deployment(AirflowTopology):
    """The running topology, and what the tests ask of it beyond it (CLI calls, triggers)."""

    DAILY = "ssp_revenue_daily"

    def __init__(self, extra_env: dict[str, str], bucket: str) -> None:
        super().__init__(LOCAL, extra_env=extra_env)
        self.bucket = bucket

    def cli(self, *args: str) -> str:
        done = self.airflow(*args, check=False)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        out: str = done.stdout
        return out

    def dag_versions(self, dag_id: str) -> int:
        return int(self.sql("SELECT count(*) FROM dag_version WHERE dag_id = %s", dag_id)[0][0])

    def wait_for_new_version(self, dag_id: str, versions: int, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.dag_versions(dag_id) > versions:
                return
            time.sleep(1)
        raise AssertionError(f"no new version of {dag_id} parsed in {seconds:.0f}s")

    def task_states(self, run_id: str, dag_id: str = DAILY) -> list[tuple[Any, ...]]:
        return self.sql("SELECT task_id, map_index, state, try_number FROM task_instance "
                        "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", dag_id, run_id)

    def trigger(self, dag_id: str, *, logical_date: dt.datetime | None = None,
                conf: dict[str, Any] | None = None) -> None:
        args = ["dags", "trigger", dag_id, "--run-id", f"manual__{uuid.uuid4().hex[:12]}"]
        if logical_date is not None:
            args += ["--logical-date", logical_date.isoformat()]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        self.cli(*args)


@pytest.fixture(scope="module")
def deployment(stack_state: dict[str, object]) -> Iterator[Deployment]:
    bucket = f"s-{uuid.uuid4().hex[:10]}"
    extra = {
        **pipeline_environment(bucket),
        "SSP_REVENUE_CLOCK": "replay",
        "SSP_REVENUE_CATCHUP": "true",
        "SSP_REVENUE_END_DATE": LAST.isoformat(),
        "SSP_REVENUE_RETRY_DELAY_SECONDS": "5",
        # A worker SIGKILLed mid-task stops heartbeating: notice it in seconds, not minutes.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # Tasks the killed worker had taken from Redis but not started stay queued until
        # this timeout hands them to another worker (600 s by default).
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "60",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    yield from started(stack_state, extra, bucket, FIRST)


def started(stack_state: dict[str, object], extra: dict[str, str], bucket: str,
            first: dt.date) -> Iterator[Deployment]:
    """A fresh deployment, the simulated world reset to before ``first``'s run is due
    (the replay clock only moves forward, whatever earlier tests left on the shared
    emulator); stopped, and the emulator reset, afterwards."""
    from ssp_revenue.core import calendar

    from ..conftest import EmulatorControl

    control = EmulatorControl(str(stack_state["emulator_url"]))
    control.reset()
    control.set_clock(calendar.run_logical_date(first, ZoneInfo("Asia/Tokyo")))
    deployment = Deployment(extra, bucket)
    deployment.up(fresh=True)
    try:
        yield deployment
    finally:
        control.reset()
        deployment.down()
