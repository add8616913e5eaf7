"""Task bodies for the DAGs: assemble inputs, call the library, map outcomes to task states.

Converging outcomes end the task successfully (logged with their reason, and
kept in pipeline_events); an actionable one that opens an incident fails the
last task of the SSP's group with ActionableAlert (no pointless retries), whose
notifier pages; one already open only updates it.
Unexpected errors propagate and use the task's normal retries.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from ssp_revenue.core import calendar, registry
from ssp_revenue.core.errors import Reason
from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import pipeline, runs, runtime
from ssp_revenue.operate.outcomes import ActionableFailure
from ssp_revenue.operate.runtime import Services
from ssp_revenue_airflow.hooks import SspConnectionHook, aws_clients
from ssp_revenue_airflow.notifier import ActionableAlert, deliver

log = logging.getLogger(__name__)


def settings() -> Settings:
    return Settings.from_env()


def services(current: Settings, conn_id: str | None = None) -> Services:
    s3, glue = aws_clients(current, conn_id or os.environ.get("SSP_REVENUE_AWS_CONN_ID", "aws_default"))
    return runtime.services_for(current, s3=s3, glue=glue)


def revenue_anchor(context: Any, tz: Any) -> dt.date:
    """The newest revenue date of this run.

    The ``revenue_date`` param wins. Otherwise the logical date says it: the run
    for revenue date D has logical date D 06:00 (its data interval's start), for
    scheduled runs, backfills and manual triggers given a logical date alike. A
    manual trigger given a logical date gets a data interval Airflow inferred
    from the wall clock, so the interval is never read. A run with no logical
    date (manual without one, asset-triggered) covers the window ending the day
    before it was made.
    """
    params = context.get("params") or {}
    explicit = params.get("revenue_date")
    if explicit:
        return dt.date.fromisoformat(str(explicit))
    logical = context.get("logical_date")
    if logical is not None:
        return calendar.revenue_date_of_logical_date(logical, tz)
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None) if dag_run is not None else None
    if run_after is None:
        raise ValueError("a run needs a logical date, a run_after or an explicit revenue_date")
    return calendar.anchor_date(run_after, tz)


def emit_metrics(job: dict[str, Any], step: str) -> None:
    """Send this step's numbers through Airflow's metrics (StatsD / OpenTelemetry settings)."""
    from airflow.sdk.observability.stats import Stats

    for metric in job.get("metrics", []):
        if metric["step"] != step:
            continue
        name = f"ssp_revenue.{metric['name']}"
        tags = {"ssp": job["ssp"]}
        if metric["name"] in ("hours_to_freeze", "restatement_abs"):
            Stats.gauge(name, metric["value"], tags=tags)
        else:
            Stats.incr(name, int(metric["value"]), tags=tags)


def _timed(job: dict[str, Any], step: str, started: float, cpu_started: float) -> dict[str, Any]:
    """Record the seconds this task spent in its body (ours: settings, clients, the library),
    and the task process's CPU seconds before its body and in it.

    The job carries them from task to task (XCom), so the last task's result
    holds the group's; a task's duration minus its body's seconds is what Airflow
    cost around it (the speed benchmarks read them back). A forked task process's
    CPU clock starts at zero, so the CPU before the body is its start-up.
    """
    cpu = {"before": round(cpu_started, 4), "body": round(time.process_time() - cpu_started, 4)}
    return {**job, "seconds": {**job.get("seconds", {}), step: round(time.perf_counter() - started, 4)},
            "cpu": {**job.get("cpu", {}), step: cpu}}


def daily_groups() -> list[dict[str, Any]]:
    """The daily DAG's groups, one per registry SSP in its order, read when the DAG is parsed
    (a registry change shows as a new DAG version; a run keeps the version it started with).
    Each is a job without dates: its ``ingest`` plans them first."""
    current = settings()
    return [{"ssp": c.name} for c in registry.load_registry(current.config_dir / "ssps.yaml")]


def plan_chances(context: Any) -> list[dict[str, Any]]:
    """A chance run's jobs: the (SSP, date) pairs whose fetch chance this run is."""
    started, cpu_started = time.perf_counter(), time.process_time()
    current = settings()
    ssps = registry.load_registry(current.config_dir / "ssps.yaml")
    logical = context.get("logical_date")
    if logical is None:
        logical = context["dag_run"].run_after
    at = calendar.as_local(logical, dt.UTC)
    jobs = runs.chance_jobs(at, ssps, services(current))
    return [_timed(job, "plan", started, cpu_started) for job in jobs]


Step = Callable[..., dict[str, Any]]


def about_the_job(step: Step) -> Step:
    """An unexpected error of a step says which SSP and dates it was about (for its alert)."""

    @functools.wraps(step)
    def run(job: dict[str, Any], *rest: Any) -> dict[str, Any]:
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return _timed(step(job, *rest), step.__name__, started, cpu_started)
        except Exception as exc:
            dates = job.get("dates") or []
            span = f"{dates[0]}..{dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "")
            exc.ssp_revenue_context = {"ssp": job.get("ssp", ""), "revenue_date": span}  # type: ignore[attr-defined]
            raise

    return run


def _config(current: Settings, job: dict[str, Any]) -> registry.SspConfig:
    return registry.find(registry.load_registry(current.config_dir / "ssps.yaml"), job["ssp"])


def _fetch(job: dict[str, Any], config: registry.SspConfig, svc: Services) -> dict[str, Any]:
    try:
        credentials = SspConnectionHook(config.connection_id).get_conn()
    except Exception as exc:  # AirflowNotFoundException, or a Connection missing its secret
        # Retrying will not create the Connection: record it (actionable, alerted by
        # load) and let the other steps run on what is already landed.
        job = pipeline.fetch_unavailable(
            job, f"Connection {config.connection_id!r}: {type(exc).__name__}: {exc}",
            Reason.MISSING_CONNECTION, svc)
    else:
        job = pipeline.fetch_step(job, runtime.connector(config, credentials, svc), svc)
    emit_metrics(job, "fetch")
    return job


@about_the_job
def ingest(job: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Fetch every due date and land it raw, then validate what landed.

    A daily group's job comes without dates: this SSP's due dates are planned first
    (none before the start date: the task skips, and its load with it).
    Validation ends here: what failed is quarantined and never reaches ``load``,
    which publishes only the batches this task passed (staged, or re-read from raw).
    """
    current = settings()
    svc = services(current)
    if "dates" not in job:
        planned = runs.daily_job(revenue_anchor(context, current.tz), job["ssp"], svc)
        if planned is None:
            raise AirflowSkipException(f"{job['ssp']}: no revenue dates due yet")
        job = planned
    config = _config(current, job)
    job = pipeline.validate_step(_fetch(job, config, svc), config, svc)
    emit_metrics(job, "validate")
    return job


@about_the_job
def load(job: dict[str, Any]) -> dict[str, Any]:
    """Publish the validated batches, freeze due dates, book adjustments, allocate frozen
    dates, then settle the incidents.

    A run that opens an incident fails this task once (ActionableAlert, no
    retries) and its notifier pages; all-clears are delivered without failing.
    """
    current = settings()
    svc = services(current)
    job = pipeline.load_job(job, _config(current, job), svc)
    for step in ("publish", "freeze", "allocate"):
        emit_metrics(job, step)
    try:
        notices = pipeline.raise_if_actionable(job, svc)
    except ActionableFailure as exc:
        raise ActionableAlert(str(exc), exc.alerts) from exc
    if notices:
        deliver(notices, current)
    return job


def close_month(context: Any) -> dict[str, Any]:
    """Close the month before this run (or params.month); one incident if it cannot be closed."""
    from ssp_revenue.allocate import close

    current = settings()
    svc = services(current)
    run_after = context.get("logical_date") or context["dag_run"].run_after
    explicit = (context.get("params") or {}).get("month")
    names = [s.name for s in registry.load_registry(current.config_dir / "ssps.yaml")]
    try:
        result, notices = runs.close_run(calendar.as_local(run_after, dt.UTC), names, svc,
                                         month=close.Month.parse(explicit) if explicit else None)
    except ActionableFailure as exc:
        raise ActionableAlert(str(exc), exc.alerts) from exc
    if notices:
        deliver(notices, current)
    return result


def reconcile_statements(context: Any) -> dict[str, Any]:
    """The statements run at this run's time; pages (once) what it opened, all-clears what it resolved."""
    from ssp_revenue.operate import statements

    current = settings()
    svc = services(current)
    run_after = context.get("logical_date") or context["dag_run"].run_after
    ssps = registry.load_registry(current.config_dir / "ssps.yaml")

    def connector(config: registry.SspConfig) -> Any:
        return runtime.connector(config, SspConnectionHook(config.connection_id).get_conn(), svc)

    try:
        results, notices = statements.statement_run(calendar.as_local(run_after, dt.UTC), ssps, svc,
                                                    connector)
    except ActionableFailure as exc:
        raise ActionableAlert(str(exc), exc.alerts) from exc
    if notices:
        deliver(notices, current)
    for found in results:
        log.info("%s %s: %s %s %s", found.ssp, found.month, found.state, found.statement_id, found.detail)
    states = sorted({r.state for r in results})
    return {"months": len(results), "by_state": {s: sum(1 for r in results if r.state == s) for s in states}}


def compact_closed_dates() -> dict[str, Any]:
    """One file per partition for every closed date of the append-only tables."""
    from ssp_revenue.operate import maintenance

    current = settings()
    svc = services(current)
    done = maintenance.compact(svc.s3, svc.catalog, current, svc.clock.now())
    log.info("compacted %d partitions (%d files into %d)", len(done),
             sum(c.files_before for c in done), len(done))
    return {"partitions": len(done), "files_before": sum(c.files_before for c in done)}


def vacuum_superseded() -> dict[str, Any]:
    """Delete (or tag for the lifecycle rule) what has been superseded past the reader grace."""
    from ssp_revenue.operate import maintenance

    current = settings()
    # The janitor role (include/iam/lake_janitor.json): the worker's own may not delete.
    svc = services(current, os.environ.get("SSP_REVENUE_VACUUM_AWS_CONN_ID"))
    chosen = maintenance.vacuum_lake(svc.s3, svc.catalog, current, svc.clock.now(), apply=True)
    log.info("%s", chosen.summary(applied=True))
    return {"prefixes": len(chosen.doomed), "objects": chosen.objects, "bytes": chosen.bytes,
            "mode": current.vacuum_mode}
