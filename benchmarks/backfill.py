"""A backfill through real DAG runs: N revenue dates x 4 SSPs, one ``dag.test()`` per date on
the simulated clock.

``dag.test()`` runs every task in this process, so the library calls the tasks make
(the pipeline steps, the plan's bootstrap and ledger listing) are timed in place:
the rest of each run's wall time is Airflow's (task start-up, Connections and
clients built per task, XCom, the metadata database). Optionally the same
sequence then runs through the library alone (``run_ssp``) as a cross-check."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import write_table
from benchmarks.session import LOCAL, Session, post, rows_per_day
from ssp_revenue.core import calendar, registry
from ssp_revenue.core.clock import EmulatorClock
from ssp_revenue.finalize import freeze
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.operate import pipeline, runtime
from ssp_revenue_airflow import local

SSPS = ("adpulse", "xchange", "nihon", "gamnet")


def four_ssp_config(base: Path) -> Path:
    """The shipped config with only the benchmark's SSPs in the registry."""
    target = LOCAL / "config"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target)
    ssps = yaml.safe_load((base / "ssps.yaml").read_text())
    key = next(k for k, v in ssps.items() if isinstance(v, list))
    ssps[key] = [s for s in ssps[key] if s["name"] in SSPS]
    (target / "ssps.yaml").write_text(yaml.safe_dump(ssps, sort_keys=False))
    return target


# What the DAG's tasks call in the library, timed in place during the DAG runs.
LIBRARY_CALLS = (
    (pipeline, ("fetch_step", "validate_step", "publish_step", "freeze_step", "allocate_step",
                "raise_if_actionable", "new_job")),
    (runtime, ("bootstrap",)),
    (freeze, ("frozen_dates",)),
)


@contextlib.contextmanager
def timed_library_calls(spent: dict[str, float]) -> Iterator[None]:
    """Accumulate the seconds spent inside each library call into ``spent``."""
    originals = [(module, name, getattr(module, name)) for module, names in LIBRARY_CALLS for name in names]

    def timer(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started
        return wrapper

    for module, name, call in originals:
        setattr(module, name, timer(name, call))
    try:
        yield
    finally:
        for module, name, call in originals:
            setattr(module, name, call)


def main(session: Session, dates: int, rows: int, refetch_days: int, adjustment_days: int,
         library_pass: bool = True) -> str:
    for ssp in SSPS:
        # The emulator's request-rate limit is switched off: it would time its windows, not us.
        post(session.state["emulator_url"] + "/_control/profile",
             {"ssp": ssp, "rows": rows_per_day(ssp, rows), "rate_limit_per_window": 0})
    first = dt.date(2026, 6, 1)
    days = [first + dt.timedelta(days=n) for n in range(dates)]
    config_dir = four_ssp_config(session.settings.config_dir)
    env = {
        **local.airflow_environment(LOCAL / "backfill"),
        **local.stack_environment(LOCAL / "stack.json"),
        "SSP_REVENUE_BUCKET": "backfill-airflow", "SSP_REVENUE_GLUE_DATABASE": "backfill_airflow",
        "SSP_REVENUE_CONFIG_DIR": str(config_dir), "SSP_REVENUE_START_DATE": first.isoformat(),
        "SSP_REVENUE_REFETCH_DAYS": str(refetch_days), "SSP_REVENUE_ADJUSTMENT_DAYS": str(adjustment_days),
        "SSP_REVENUE_ALERTS_LOG": str(LOCAL / "backfill" / "alerts.jsonl"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    os.environ.update(env)
    local.migrate_db(env)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(local.ROOT / "dags")).get_dag("ssp_revenue_daily")
    clock = EmulatorClock(session.state["emulator_url"])
    run_walls: list[float] = []
    per_task: dict[str, list[float]] = defaultdict(list)
    spent: dict[str, float] = defaultdict(float)
    failed = 0
    with timed_library_calls(spent):
        for day in days:
            started = time.perf_counter()
            run = local.run_day(dag, day, clock)
            run_walls.append(time.perf_counter() - started)
            failed += "success" not in str(run.state)
            for ti in run.get_task_instances():
                if ti.duration is not None:
                    per_task[ti.task_id.rsplit(".", 1)[-1]].append(float(ti.duration))
    airflow_total, inside = sum(run_walls), sum(spent.values())
    table = [
        ["DAG runs (dag.test, SQLite): wall", f"{airflow_total:.0f}", f"{statistics.median(run_walls):.1f}"],
        ["of which inside the library (timed in place)", f"{inside:.0f}",
         f"{inside / len(days):.1f}"],
        ["of which Airflow", f"{airflow_total - inside:.0f} ({(airflow_total - inside) / airflow_total:.0%})",
         f"{(airflow_total - inside) / len(days):.1f}"],
    ]
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        table.append([f"library: {name}", f"{seconds:.0f}", f"{seconds / len(days):.2f}"])
    for task, values in sorted(per_task.items()):
        table.append([f"task {task} (per mapped instance)", f"{sum(values):.0f}",
                      f"{statistics.median(values):.1f}"])
    if library_pass:
        table += _library_pass(session, days, first, config_dir, refetch_days, adjustment_days, clock)
    return write_table(
        "backfill",
        f"Backfill: {dates} revenue dates x {len(SSPS)} SSPs at {rows:,} rows a day through real DAG runs",
        ["what", "total s", "median s per run / task (library: mean per run)"], table,
        f"Each run re-fetches its due window (refetch {refetch_days} days, adjustments {adjustment_days} "
        f"days) for every SSP; {failed} run(s) not successful. Tasks run sequentially in dag.test() "
        "(no executor parallelism), in this process, which is what lets the library calls be timed "
        "in place."
        + (" The library-only pass runs the identical steps in one process, with clients built once."
           if library_pass else ""),
    )


def _library_pass(session: Session, days: list[dt.date], first: dt.date, config_dir: Path,
                  refetch_days: int, adjustment_days: int, clock: EmulatorClock) -> list[list[str]]:
    # The same work without Airflow: same instants, same due dates, a lake of its own.
    settings = session.settings.replace(bucket="backfill-library", glue_database="backfill_library",
                                        config_dir=config_dir, start_date=first,
                                        refetch_days=refetch_days, adjustment_days=adjustment_days,
                                        clock="emulator")
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    configs = registry.load_registry(config_dir / "ssps.yaml")

    calls: list[str] = []
    for client in (services.s3, services.catalog.glue):  # botocore's own hook: every request made
        client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    library_walls: list[float] = []
    cpu: list[float] = []
    made: list[int] = []
    for day in days:
        clock.set(local.run_instant(day) + dt.timedelta(minutes=5))
        due = calendar.dates_due(day, refetch_days, adjustment_days, first)
        started, cpu_started, calls_before = time.perf_counter(), time.process_time(), len(calls)
        for config in configs:
            credentials = emulator_credentials(config.name, session.state["emulator_url"],
                                               settings.aws_endpoint)
            connector = runtime.connector(config, credentials, services)
            pipeline.run_ssp(config, due, connector, services)
        library_walls.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        made.append(len(calls) - calls_before)
    # The steady state: from run 4 + the window on, a run's dates have all been fetched, frozen
    # (two days after) and gone through their adjustment days, so each run does the same work.
    steady = slice(min(3 + max(refetch_days, adjustment_days), len(days) - 1), None)
    return [["same steps, library only (cross-check)", f"{sum(library_walls):.0f}",
             f"{statistics.median(library_walls):.1f}"],
            ["library only: CPU s of this process (not the emulator's or moto's); per run: median of the "
             "steady runs", f"{sum(cpu):.0f}",
             f"{statistics.median(cpu[steady]):.2f}"],
            ["library only: S3 and Glue requests; per run: median of the steady runs", f"{len(calls)}",
             f"{statistics.median(made[steady]):.0f}"]]
