"""Daily runs under the real scheduler (Celery, Local) against dag.test(), same dates.

Each executor gets a fresh production topology (PostgreSQL, Redis, api-server,
scheduler, dag-processor, triggerer, worker) and makes three scheduled catchup
runs; the same three dates then run through dag.test() in this process.
Reported: wall time per run, and each task's mean duration as the metadata DB
records it (start to end of the task process, Airflow's start-up included).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.common import write_table

LOCAL = Path(".local") / "bench-scheduler"
FIRST = dt.date(2026, 10, 27)
DAYS = 3
TOKYO = ZoneInfo("Asia/Tokyo")


def _pipeline_env(bucket: str) -> dict[str, str]:
    return {"SSP_REVENUE_BUCKET": bucket, "SSP_REVENUE_GLUE_DATABASE": bucket.replace("-", "_"),
            "SSP_REVENUE_START_DATE": FIRST.isoformat(), "SSP_REVENUE_REFETCH_DAYS": "4",
            "SSP_REVENUE_ADJUSTMENT_DAYS": "4"}


# The floor: tasks that do nothing, under the same executor, scheduler and start-up.
FLOOR_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="bench_floor", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def bench_floor():
    @task
    def empty() -> None:
        return None

    for n in range(5):
        empty.override(task_id=f"empty_{n}")()


bench_floor()
"""


def dags_with_floor(directory: Path) -> Path:
    """The project's DAG files plus the empty-task DAG (never in the deployed dags/)."""
    from ssp_revenue_airflow import local

    directory.mkdir(parents=True, exist_ok=True)
    for source in (local.ROOT / "dags").glob("*.py"):
        (directory / source.name).write_text(source.read_text())
    (directory / "bench_floor.py").write_text(FLOOR_DAG)
    return directory


def _task_means(topology: Any, dag_id: str) -> dict[str, tuple[float, int]]:
    rows = topology.sql("SELECT task_id, avg(extract(epoch FROM end_date - start_date)), count(*) "
                        "FROM task_instance WHERE dag_id = %s GROUP BY 1 ORDER BY 1", dag_id)
    return {t: (float(d), int(n)) for t, d, n in rows}


def under_scheduler(executor: str) -> dict[str, Any]:
    from ssp_revenue_airflow.topology import AirflowTopology

    last = FIRST + dt.timedelta(days=DAYS - 1)
    topology = AirflowTopology(LOCAL / executor, executor=executor, extra_env={
        **_pipeline_env(f"b-{uuid.uuid4().hex[:10]}"), "SSP_REVENUE_CLOCK": "replay",
        "SSP_REVENUE_CATCHUP": "true", "SSP_REVENUE_END_DATE": last.isoformat(),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_with_floor(LOCAL / executor / "dags").resolve())})
    topology.up(fresh=True)
    try:
        topology.wait_for_dag("ssp_revenue_daily", seconds=300)
        topology.airflow("dags", "unpause", "ssp_revenue_daily")
        runs = topology.wait_for_runs("ssp_revenue_daily", DAYS, seconds=1800)
        tasks = _task_means(topology, "ssp_revenue_daily")
        floor = floor_dag_seconds(topology)
    finally:
        topology.down()
    return {"runs": [(r["end_date"] - r["start_date"]).total_seconds() for r in runs],
            "states": [r["state"] for r in runs], "tasks": tasks,
            "floor": floor}


def floor_dag_seconds(topology: Any) -> float:
    """Trigger ``bench_floor`` once and return its empty tasks' mean seconds."""
    topology.wait_for_dag("bench_floor", seconds=300)
    topology.airflow("dags", "unpause", "bench_floor")
    topology.airflow("dags", "trigger", "bench_floor")
    topology.wait_for_runs("bench_floor", 1, seconds=600)
    means = _task_means(topology, "bench_floor")
    return sum(d * n for d, n in means.values()) / max(1, sum(n for _, n in means.values()))


def under_dag_test() -> dict[str, Any]:
    from ssp_revenue.core.clock import EmulatorClock
    from ssp_revenue.operate import stack
    from ssp_revenue_airflow import local

    local_stack = stack.LocalStack(LOCAL)
    state = local_stack.up()
    os.environ.update({**local.airflow_environment(LOCAL), **local.stack_environment(local_stack.state_file),
                       **_pipeline_env(f"b-{uuid.uuid4().hex[:10]}"),
                       "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    local.migrate_db(dict(os.environ))
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(local.ROOT / "dags")).get_dag("ssp_revenue_daily")
    clock = EmulatorClock(state["emulator_url"])
    took = []
    for n in range(DAYS):
        started = time.perf_counter()
        run = local.run_day(dag, FIRST + dt.timedelta(days=n), clock)
        took.append(time.perf_counter() - started)
        assert "success" in str(run.state)
    return {"runs": took}


def main() -> str:
    results = {name: under_scheduler(name) for name in ("CeleryExecutor", "LocalExecutor")}
    baseline = under_dag_test()
    rows = [["dag.test() (one process, SQLite)", *(f"{t:.1f}" for t in baseline["runs"]), "", "", ""]]
    for name, result in results.items():
        tasks = result["tasks"]
        rows.append([f"{name} (PostgreSQL)", *(f"{t:.1f}" for t in result["runs"]),
                     f"{tasks['per_ssp.ingest'][0]:.1f}", f"{result['floor']:.1f}",
                     ", ".join(f"{t} {d:.1f}" for t, (d, _) in tasks.items() if t != "per_ssp.ingest")])
    notes = (
        f"Three scheduled catchup runs (revenue dates {FIRST} .. {FIRST + dt.timedelta(days=DAYS - 1)}, "
        "5 SSPs, the emulator's default grain) under a fresh topology per executor, on the replay clock; "
        "then the same dates through dag.test(). A task's time is its task process from start to end "
        "as the metadata DB records it: Airflow's start-up, the DAG parse, Connections through the "
        "api-server and the library's work. The floor is the mean of 5 tasks that do nothing "
        "(`bench_floor`, written next to a copy of dags/ for the benchmark only) under the same "
        "topology: what any task costs before our code runs. "
        "Reproduce: `python -m benchmarks --only scheduler` (PYTHONPATH=.:plugins:include)."
    )
    return write_table("scheduler_runs", "Daily runs: real scheduler against dag.test()",
                       ["harness", "run 1 (s)", "run 2 (s)", "run 3 (s)", "ingest task (fetch + validate, s)",
                        "empty task, the floor (s)", "other tasks, mean (s)"], rows, notes)
