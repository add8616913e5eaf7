"""Daily SSP revenue: plan the due dates, then per SSP fetch -> validate -> publish -> finalize."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task, task_group

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier

# A pipeline job (plain JSON dict) at run time; its XComArg while the DAG is parsed.
Job = Any


@dag(
    dag_id="ssp_revenue_daily",
    # A data-interval timetable on purpose: a run at 06:00 JST on day X covers
    # revenue dates up to X-1 (interval end - 1 day, see steps.revenue_anchor).
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="Asia/Tokyo"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Tokyo"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
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
