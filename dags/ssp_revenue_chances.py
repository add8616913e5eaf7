"""Fetch chances before each cutoff: only the (SSP, date) pairs whose chance this run is."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier
from ssp_revenue_airflow.scheduling import chances_dag_arguments, retry_delay
from ssp_revenue_airflow.ssp_group import per_ssp_steps


@dag(
    dag_id="ssp_revenue_chances",
    # At the business-zone times of day when some SSP's date has a fetch chance
    # (available_after in ssps.yaml .. an hour before the cutoff; see scheduling.py).
    **chances_dag_arguments(),
    max_active_runs=1,
    default_args={
        "retries": 1,
        "retry_delay": retry_delay(),
        "on_failure_callback": [SspRevenueNotifier()],
    },
    tags=["ssp-revenue"],
)
def ssp_revenue_chances() -> None:
    @task
    def plan() -> list[dict[str, Any]]:
        return steps.plan_chances(get_current_context())

    per_ssp_steps(plan())


ssp_revenue_chances()
