"""Daily SSP revenue: plan the due dates, then per SSP fetch -> validate -> publish -> finalize."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task, task_group

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier
from ssp_revenue_airflow.scheduling import daily_dag_arguments, retry_delay

# A pipeline job (plain JSON dict) at run time; its XComArg while the DAG is parsed.
Job = Any


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
    @task
    def plan() -> list[dict[str, Any]]:
        return steps.plan(get_current_context())

    @task
    def fetch(job: Job) -> dict[str, Any]:
        return steps.fetch(job)

    @task
    def validate(job: Job) -> dict[str, Any]:
        return steps.validate(job)

    @task
    def publish(job: Job) -> dict[str, Any]:
        return steps.publish(job)

    @task
    def finalize(job: Job) -> dict[str, Any]:
        return steps.finalize(job)

    @task_group
    def per_ssp(job: Job) -> None:
        # One mapped group per SSP: one SSP's failure does not block another.
        # Freezing runs right after publishing, in the same group: it reads only
        # publish_log and the clock, so running it here (not on an asset event
        # that may be missed) keeps every run self-sufficient.
        finalize(publish(validate(fetch(job))))

    per_ssp.expand(job=plan())


ssp_revenue_daily()
