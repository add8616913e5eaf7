"""Task bodies for the DAGs: assemble inputs, call the library, map outcomes to task states.

Converging outcomes end the task successfully (logged with their reason, and
kept in pipeline_events); new actionable ones fail the last task of the SSP's
group with ActionableAlert (no pointless retries), whose notifier delivers them.
Unexpected errors propagate and use the task's normal retries.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from ssp_revenue import calendar, freeze, lake, pipeline, registry, runtime
from ssp_revenue.clock import parse_instant
from ssp_revenue.connectors import connector_class
from ssp_revenue.errors import Reason
from ssp_revenue.outcomes import ActionableFailure
from ssp_revenue.pipeline import Services
from ssp_revenue.settings import Settings
from ssp_revenue_airflow.hooks import SspConnectionHook, aws_clients
from ssp_revenue_airflow.notifier import ActionableAlert

log = logging.getLogger(__name__)


def settings() -> Settings:
    return Settings.from_env()


def services(current: Settings) -> Services:
    s3, glue = aws_clients(current, os.environ.get("SSP_REVENUE_AWS_CONN_ID", "aws_default"))
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


def plan(context: Any) -> list[dict[str, Any]]:
    current = settings()
    anchor = revenue_anchor(context, current.tz)
    svc = services(current)
    runtime.start_run(current, svc.clock, calendar.run_due(anchor, current.tz))
    dates = calendar.dates_due(anchor, current.refetch_days, current.adjustment_days,
                               current.start_date)
    if not dates:
        log.info("no revenue dates due: %s is before the start date %s", anchor, current.start_date)
        return []
    ssps = registry.load_registry(current.config_dir / "ssps.yaml")
    runtime.bootstrap(svc)
    log.info("revenue dates due: %s .. %s for %s", dates[0], dates[-1], [s.name for s in ssps])
    return [
        pipeline.new_job(s.name, dates, freeze.frozen_dates(svc.s3, svc.bucket, s.name))
        for s in ssps
    ]


Step = Callable[[dict[str, Any]], dict[str, Any]]


def about_the_job(step: Step) -> Step:
    """An unexpected error of a step says which SSP and dates it was about (for its alert)."""

    @functools.wraps(step)
    def run(job: dict[str, Any]) -> dict[str, Any]:
        try:
            return step(job)
        except Exception as exc:
            dates = job.get("dates") or []
            span = f"{dates[0]}..{dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "")
            exc.ssp_revenue_context = {"ssp": job.get("ssp", ""), "revenue_date": span}  # type: ignore[attr-defined]
            raise

    return run


def _config(current: Settings, job: dict[str, Any]) -> registry.SspConfig:
    return registry.find(registry.load_registry(current.config_dir / "ssps.yaml"), job["ssp"])


@about_the_job
def fetch(job: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    config = _config(current, job)
    svc = services(current)
    try:
        credentials = SspConnectionHook(config.connection_id).get_conn()
    except Exception as exc:  # AirflowNotFoundException, or a Connection missing its secret
        # Retrying will not create the Connection: record it (actionable, alerted by
        # finalize) and let the other steps run on what is already landed.
        job = pipeline.fetch_unavailable(
            job, f"Connection {config.connection_id!r}: {type(exc).__name__}: {exc}",
            Reason.MISSING_CONNECTION, svc)
        emit_metrics(job, "fetch")
        return job
    connector = connector_class(config.style)(config, credentials, clock=svc.clock,
                                              business_tz=current.business_tz)
    job = pipeline.fetch_step(job, connector, svc)
    emit_metrics(job, "fetch")
    return job


@about_the_job
def validate(job: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    job = pipeline.validate_step(job, _config(current, job), services(current))
    emit_metrics(job, "validate")
    return job


@about_the_job
def publish(job: dict[str, Any]) -> dict[str, Any]:
    current = settings()
    job = pipeline.publish_step(job, _config(current, job), services(current))
    emit_metrics(job, "publish")
    return job


@about_the_job
def finalize(job: dict[str, Any]) -> dict[str, Any]:
    """Freeze due dates, book adjustments, allocate frozen dates, then settle: alert once."""
    current = settings()
    svc = services(current)
    job = pipeline.freeze_step(job, svc)
    job = pipeline.allocate_step(job, svc)
    emit_metrics(job, "freeze")
    emit_metrics(job, "allocate")
    try:
        pipeline.raise_if_actionable(job, svc)
    except ActionableFailure as exc:
        raise ActionableAlert(str(exc), [a.to_dict() for a in exc.alerts]) from exc
    return job


def close_month(context: Any) -> dict[str, Any]:
    """Close the month before this run (or params.month); alert once if it cannot be closed."""
    from ssp_revenue import allocation, close, report
    from ssp_revenue.alerts import Alert, AlertLedger
    from ssp_revenue.errors import Reason

    current = settings()
    svc = services(current)
    runtime.bootstrap(svc)
    run_after = context.get("logical_date") or context["dag_run"].run_after
    runtime.start_run(current, svc.clock, run_after)
    explicit = (context.get("params") or {}).get("month")
    if explicit:
        month = close.Month.parse(explicit)
    else:
        month = close.Month.before(run_after.astimezone(current.tz).date())
    names = [s.name for s in registry.load_registry(current.config_dir / "ssps.yaml")]
    try:
        inputs = allocation.AllocationInputs.from_config(current.config_dir)
        issue = close.close_month(month, names, settings=current, s3=svc.s3, catalog=svc.catalog,
                                  inputs=inputs, now=svc.clock.now())
    except (close.NotClosable, ValueError) as exc:
        alert = Alert("all", month.first, Reason.NOT_CLOSABLE.value, "close", f"{month}: {exc}")
        claimed = AlertLedger(svc.s3, svc.bucket).claim(alert, svc.clock.now())
        raise ActionableAlert(str(exc), [alert.to_dict()] if claimed else []) from exc
    page = report.render(month, names, close.parse_csv(issue.csv), status=f"Closed, issue {issue.issue}",
                         settings=current, s3=svc.s3, catalog=svc.catalog, inputs=inputs,
                         as_of=parse_instant(issue.manifest["closed_at"]))
    key = close.issue_key(month, issue.issue, f"revenue-{month}.html")
    lake.put_once(svc.s3, svc.bucket, key, page.encode(), ContentType="text/html; charset=utf-8")
    log.info("%s: %s issue %s, total %s JPY; report s3://%s/%s", issue.state, month, issue.issue,
             issue.manifest["totals_jpy"]["total_jpy"], svc.bucket, key)
    return {"month": str(month), "issue": issue.issue, "state": issue.state,
            "sha256": issue.manifest["sha256"], "report": key}
