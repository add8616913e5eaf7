"""The per-SSP task group both pipeline DAGs (daily and chances) run over their jobs."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task, task_group

from ssp_revenue_airflow import tasks as steps

# A pipeline job (plain JSON dict) at run time; its XComArg while the DAG is parsed.
Job = Any


def per_ssp_steps(jobs: Any) -> None:
    """fetch -> validate -> publish -> finalize, one mapped group per SSP's job.

    One SSP's failure does not block another. Freezing runs right after
    publishing, in the same group: it reads only publish_log and the clock, so
    running it here (not on an asset event that may be missed) keeps every run
    self-sufficient.
    """

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
        finalize(publish(validate(fetch(job))))

    per_ssp.expand(job=jobs)
