"""Daily SSP revenue: per SSP in the registry, ingest (plan the due dates, fetch, validate) -> load
(publish, freeze, allocate)."""

from __future__ import annotations

from airflow.sdk import Param, dag

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier
from ssp_revenue_airflow.scheduling import daily_dag_arguments, retry_delay
from ssp_revenue_airflow.ssp_group import per_ssp_steps


@dag(
    dag_id="ssp_revenue_daily",
    # The run for revenue date D: data interval [D 06:00, D+1 06:00) JST, logical
    # date D 06:00, starting from the go-live date (see scheduling.py).
    **daily_dag_arguments(),
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": retry_delay(),
        "on_failure_callback": [SspRevenueNotifier()],
    },
    params={
        "revenue_date": Param(
            None, type=["null", "string"], description="newest revenue date to (re)fetch, YYYY-MM-DD"
        )
    },
    tags=["ssp-revenue"],
)
def ssp_revenue_daily() -> None:
    per_ssp_steps(steps.daily_groups())


ssp_revenue_daily()
