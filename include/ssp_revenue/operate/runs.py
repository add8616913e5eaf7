"""What each kind of run does: the DAG tasks and ``ssp-revenue replay`` both call these.

- a daily run for revenue date D fetches every date still due (the refetch
  window widened to the adjustment horizon) for every SSP;
- a chance run at instant T fetches only the (SSP, date) pairs whose fetch
  chance T is (``ssp_revenue.operate.schedule``);
- a close run closes the month before it.

Every SSP's job then goes through the same steps, and ends in ``settle``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ssp_revenue.allocate import close, report, tables
from ssp_revenue.core import calendar
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.errors import Reason
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.finalize import freeze
from ssp_revenue.ingest.connectors import ReportConnector
from ssp_revenue.lake import store
from ssp_revenue.operate import incidents, pipeline, runtime, schedule
from ssp_revenue.operate.outcomes import ActionableFailure, Severity, StepOutcome
from ssp_revenue.operate.runtime import Services

log = logging.getLogger(__name__)


def daily_jobs(revenue_date: dt.date, ssps: list[SspConfig], services: Services) -> list[dict[str, Any]]:
    """The jobs of the daily run for ``revenue_date`` (its clock moved to its start on replay)."""
    jobs = (daily_job(revenue_date, s.name, services) for s in ssps)
    return [job for job in jobs if job is not None]


def daily_job(revenue_date: dt.date, ssp: str, services: Services) -> dict[str, Any] | None:
    """One SSP's job of the daily run for ``revenue_date``: every date still due, or None
    before the start date. Each SSP's task plans its own: a planning task ahead of them
    cost a run a task start-up and a hand-off (benchmarks/results/backfill_topology.md)."""
    settings = services.settings
    runtime.start_run(settings, services.clock, calendar.run_due(revenue_date, settings.tz))
    dates = calendar.dates_due(revenue_date, settings.refetch_days, settings.adjustment_days,
                               settings.start_date)
    if not dates:
        log.info("no revenue dates due: %s is before the start date %s", revenue_date, settings.start_date)
        return None
    runtime.bootstrap(services)
    log.info("revenue dates due for %s: %s .. %s", ssp, dates[0], dates[-1])
    return pipeline.new_job(ssp, dates, freeze.frozen_dates(services.s3, services.bucket, ssp))


def chance_jobs(at: dt.datetime, ssps: list[SspConfig], services: Services) -> list[dict[str, Any]]:
    """The jobs of the chance run made at ``at``: only the pairs whose chance it is."""
    settings = services.settings
    runtime.start_run(settings, services.clock, at)
    plan = schedule.chance_plan(at, ssps, settings)
    if not plan:
        log.info("chance run at %s: no (SSP, date) has a chance now", at.isoformat())
        return []
    runtime.bootstrap(services)
    log.info("chance run at %s: %s", at.isoformat(),
             {s: [d.isoformat() for d in ds] for s, ds in plan.items()})
    return [pipeline.new_job(name, dates, freeze.frozen_dates(services.s3, services.bucket, name))
            for name, dates in plan.items()]


def run_job(job: dict[str, Any], config: SspConfig, connector: ReportConnector,
            services: Services) -> list[dict[str, Any]]:
    """One SSP's job through every step in this process; its notices (pages, all-clears).

    Raises ``ActionableFailure`` (carrying the notices) when it opened an incident,
    as the DAG's last task does.
    """
    pipeline.run_job(job, config, connector, services)
    return pipeline.raise_if_actionable(job, services)


def close_run(at: dt.datetime, names: list[str], services: Services,
              month: close.Month | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Close the month before ``at`` (or ``month``): its issue, and the incident notices.

    A month that cannot be closed opens one incident for that month; the first
    close that succeeds resolves it. Raises ``ActionableFailure`` when it opens one.
    """
    settings = services.settings
    runtime.bootstrap(services)
    runtime.start_run(settings, services.clock, at)
    month = month or close.Month.before(calendar.as_local(at, settings.tz).date())
    now = services.clock.now()

    def settle(outcomes: list[StepOutcome], ran: dict[str, list[str]]) -> incidents.Review:
        return incidents.settle(incidents.EVERY_SSP, outcomes, ran, s3=services.s3, catalog=services.catalog,
                                at=now, window_start=services.window_start(now))

    try:
        inputs = tables.AllocationInputs.from_config(settings.config_dir)
        issue = close.close_month(month, names, settings=settings, s3=services.s3,
                                  catalog=services.catalog, inputs=inputs, now=now)
    except (close.NotClosable, ValueError) as exc:
        problem = StepOutcome(incidents.EVERY_SSP, month.first, "close", Severity.ACTIONABLE,
                              f"{month}: {exc}", Reason.NOT_CLOSABLE)
        result = settle([problem], {})
        notices = result.notices()
        if result.opened:
            raise ActionableFailure([problem], notices) from exc
        log.warning("month %s still not closable, incident already open: %s", month, exc)
        return {"month": str(month), "state": "not_closable"}, notices
    result = settle([], {"close": [month.first.isoformat()]})
    key = file_report(month, names, issue, services, inputs)
    log.info("%s: %s issue %s, total %s JPY; report s3://%s/%s", issue.state, month, issue.issue,
             issue.manifest["totals_jpy"]["total_jpy"], services.bucket, key)
    return ({"month": str(month), "issue": issue.issue, "state": issue.state,
             "sha256": issue.manifest["sha256"], "report": key}, result.notices())


def file_report(month: close.Month, names: list[str], issue: close.Issue, services: Services,
                inputs: tables.AllocationInputs) -> str:
    """The issue's HTML report beside its CSV (once): every issue, reissues too, has its own."""
    page = report.render(month, names, close.parse_csv(issue.csv), status=f"Closed, issue {issue.issue}",
                         settings=services.settings, s3=services.s3, catalog=services.catalog, inputs=inputs,
                         as_of=parse_instant(issue.manifest["closed_at"]))
    key = close.issue_key(month, issue.issue, f"revenue-{month}.html")
    store.put_once(services.s3, services.bucket, key, page.encode(), ContentType="text/html; charset=utf-8")
    return key
