"""The per-SSP task group both pipeline DAGs (daily and chances) run over their jobs."""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task, task_group

from ssp_revenue_airflow import tasks as steps

# A pipeline job (plain JSON dict; a daily group's has no dates yet, its ingest plans them) at
# run time; while the DAG is parsed, a literal or the plan's XComArg.
Job = Any


def per_ssp_steps(jobs: Any) -> None:
    """ingest -> load, one mapped group per SSP's job.

    ``jobs``: the daily DAG maps over one job per registry SSP, without dates (each
    ``ingest`` first plans its own SSP's due dates); the chances DAG over the jobs its
    plan task chose. Two tasks, not one per step: each hand-off between tasks costs
    about a second of scheduling and task start-up, which was a third of a daily
    run, and a planning task ahead of the daily groups cost one more (0.8 s of a
    run's wall). The boundary kept is the one that matters: ``ingest`` fetches
    and validates, ``load`` publishes only what passed. One SSP's failure does not
    block another.
    Freezing runs right after publishing, in ``load``: it reads only publish_log and
    the clock, so running it here (not on an asset event that may be missed) keeps
    every run self-sufficient.
    The job is one XCom (``multiple_outputs=False``): from a ``dict`` return type
    Airflow would also push each key as an XCom of its own, a dozen more requests to
    the api-server a task (half its CPU a run, benchmarks/results/backfill_topology.md).
    """

    @task(multiple_outputs=False)
    def ingest(job: Job) -> dict[str, Any]:
        return steps.ingest(job, get_current_context())

    @task(multiple_outputs=False)
    def load(job: Job) -> dict[str, Any]:
        return steps.load(job)

    @task_group
    def per_ssp(job: Job) -> None:
        load(ingest(job))

    per_ssp.expand(job=jobs)
