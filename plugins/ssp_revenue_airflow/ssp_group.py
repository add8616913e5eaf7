"""The per-SSP task group both pipeline DAGs (daily and chances) run over their jobs."""

from __future__ import annotations

from typing import Any

from airflow.sdk import task, task_group

from ssp_revenue_airflow import tasks as steps

# A pipeline job (plain JSON dict) at run time; its XComArg while the DAG is parsed.
Job = Any


def per_ssp_steps(jobs: Any) -> None:
    """ingest -> load, one mapped group per SSP's job.

    Two tasks, not one per step: each hand-off between tasks costs about a
    second of scheduling and task start-up, which was a third of a daily run.
    The boundary kept is the one that matters: ``ingest`` fetches and validates,
    ``load`` publishes only what passed. One SSP's failure does not block another.
    Freezing runs right after publishing, in ``load``: it reads only publish_log and
    the clock, so running it here (not on an asset event that may be missed) keeps
    every run self-sufficient.
    """

    @task
    def ingest(job: Job) -> dict[str, Any]:
        return steps.ingest(job)

    @task
    def load(job: Job) -> dict[str, Any]:
        return steps.load(job)

    @task_group
    def per_ssp(job: Job) -> None:
        load(ingest(job))

    per_ssp.expand(job=jobs)
