"""The lake's upkeep: compact the append-only tables' closed dates daily, vacuum weekly.

Both are safe to run at any time and converge on a rerun (``ssp_revenue.lake.store.logs``,
``ssp_revenue.operate.vacuum``); the CLI runs the same code (``ssp-revenue compact``,
``ssp-revenue vacuum --apply``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier
from ssp_revenue_airflow.scheduling import COMPACT_CRON, VACUUM_CRON, upkeep_dag_arguments

DEFAULTS: dict[str, Any] = {"retries": 2, "on_failure_callback": [SspRevenueNotifier()]}


@dag(dag_id="ssp_revenue_compact", **upkeep_dag_arguments(COMPACT_CRON), max_active_runs=1,
     default_args=DEFAULTS, tags=["ssp-revenue", "upkeep"])
def ssp_revenue_compact() -> None:
    @task(multiple_outputs=False)
    def compact_closed_dates() -> dict[str, Any]:
        return steps.compact_closed_dates()

    compact_closed_dates()


@dag(dag_id="ssp_revenue_vacuum", **upkeep_dag_arguments(VACUUM_CRON), max_active_runs=1,
     default_args=DEFAULTS, tags=["ssp-revenue", "upkeep"])
def ssp_revenue_vacuum() -> None:
    @task(multiple_outputs=False)
    def vacuum_superseded() -> dict[str, Any]:
        return steps.vacuum_superseded()

    vacuum_superseded()


ssp_revenue_compact()
ssp_revenue_vacuum()
