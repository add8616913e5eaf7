"""Replay the scheduler on the simulated clock: every run due in a span, in order.

The runs are the ones the DAGs' timetables make (``ssp_revenue.operate.schedule``),
and each does what its DAG's tasks do (``ssp_revenue.operate.runs``): a month of
schedule replays in minutes, with the same classification and incidents.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from ssp_revenue.core import calendar
from ssp_revenue.core.registry import SspConfig, find
from ssp_revenue.ingest.connectors import ReportConnector
from ssp_revenue.operate import runs, schedule, statements
from ssp_revenue.operate.alerts import LakeAlertLog
from ssp_revenue.operate.outcomes import ActionableFailure
from ssp_revenue.operate.runtime import Services

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ReplayReport:
    runs: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    fetches: int = 0
    notices: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def opened(self) -> list[dict[str, Any]]:
        return [n for n in self.notices if n["event"] == "opened"]

    @property
    def resolved(self) -> list[dict[str, Any]]:
        return [n for n in self.notices if n["event"] == "resolved"]

    def summary(self) -> str:
        by_reason = collections.Counter(n["reason"] for n in self.opened)
        return (f"{sum(self.runs.values())} runs ({dict(sorted(self.runs.items()))}), "
                f"{self.fetches} fetches, {len(self.opened)} incidents opened {dict(by_reason)}, "
                f"{len(self.resolved)} resolved, {self.wall_seconds:.0f} s")


Connectors = Callable[[SspConfig], ReportConnector]
BeforeRun = Callable[[schedule.Run], None]

# A run's SSP jobs side by side, as the DAG's SSP groups run under the scheduler: most of
# a job is waiting on the SSP's API, S3 and Glue, so one process keeps both cores busy.
JOB_THREADS = 4


def run_jobs(jobs: list[dict[str, Any]], ssps: list[SspConfig], connectors: Connectors,
             services: Services) -> list[dict[str, Any]]:
    """One run's jobs on threads; their notices in job order, whichever finished first,
    so a replay's incidents and alert log do not depend on the threads' timing."""

    def one(job: dict[str, Any]) -> list[dict[str, Any]]:
        config = find(ssps, job["ssp"])
        try:
            return runs.run_job(job, config, connectors(config), services)
        except ActionableFailure as exc:
            return exc.alerts

    if len(jobs) <= 1:
        return [n for job in jobs for n in one(job)]
    with concurrent.futures.ThreadPoolExecutor(min(len(jobs), JOB_THREADS),
                                               thread_name_prefix="replay-job") as pool:
        return [n for notices in pool.map(one, jobs) for n in notices]


def replay(start: dt.datetime, end: dt.datetime, *, services: Services, ssps: list[SspConfig],
           connectors: Connectors, before_run: BeforeRun | None = None,
           echo: Callable[[str], None] | None = None) -> ReplayReport:
    """Every run due in [start, end), each at its start on the simulated clock.

    ``before_run`` lets a caller change the world between runs (the tests inject
    and clear faults there), as happens between scheduled runs in production.
    """
    settings = services.settings
    if settings.clock != "replay":
        raise ValueError("replay needs the simulated clock: SSP_REVENUE_CLOCK=replay (or emulator) "
                         "and the emulator's URL")
    began = time.perf_counter()
    report = ReplayReport()
    sink = LakeAlertLog(services.s3, services.bucket)
    names = [s.name for s in ssps]
    for run in schedule.runs_between(start, end, ssps, settings):
        if before_run is not None:
            before_run(run)
        report.runs[run.kind] += 1
        notices: list[dict[str, Any]] = []
        if run.kind == "close":
            try:
                _, notices = runs.close_run(run.due, names, services)
            except ActionableFailure as exc:
                notices = exc.alerts
        elif run.kind == "statements":
            try:
                _, notices = statements.statement_run(run.due, ssps, services, connectors)
            except ActionableFailure as exc:
                notices = exc.alerts
        else:
            if run.kind == "daily":
                assert run.revenue_date is not None
                jobs = runs.daily_jobs(run.revenue_date, ssps, services)
            else:
                jobs = runs.chance_jobs(run.due, ssps, services)
            notices = run_jobs(jobs, ssps, connectors, services)
            report.fetches += sum(len(job["dates"]) for job in jobs)
        if notices:
            sink.write(notices, services.clock.now())
            report.notices += notices
        if echo is not None:
            local = calendar.as_local(run.due, settings.tz)
            what = run.revenue_date.isoformat() if run.revenue_date else ""
            line = f"{local:%Y-%m-%d %H:%M} {run.kind:6} {what}"
            for n in notices:
                line += f"\n    {n['event']:8} {n['incident_id']} {n['revenue_date']}: {n['detail']}"
            echo(line)
    report.wall_seconds = time.perf_counter() - began
    return report
