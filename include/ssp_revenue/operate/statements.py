"""The statements run: fetch, land, reconcile and true up each SSP's recent months.

Each run looks at the last ``statement_months`` ended months of every SSP whose
registry entry declares a statement. It fetches the statement where the SSP
serves it (its API or its bucket; an uploaded one is already landed), lands and
validates it, publishes ``statements``, reconciles, and books a true-up when the
variance is within tolerance. A month closed before its statement arrived is
reissued. Everything is a pure function of what is landed, so statements that
arrive late, twice or out of order end in the same tables.

Incidents (one per (SSP, month, reason)): ``statement_rejected`` for a statement
that failed validation, ``statement_variance`` beyond tolerance,
``statement_overdue`` past expected day + grace, ``statement_corrected`` for a
correction that changes a month already closed (reissue it on purpose).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from ssp_revenue.allocate import close, reconcile, tables, trueup
from ssp_revenue.core import calendar
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import PipelineError, Reason
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest.connectors import ReportConnector
from ssp_revenue.lake import statements as lake
from ssp_revenue.operate import incidents, runs, runtime
from ssp_revenue.operate.outcomes import ActionableFailure, Severity, StepOutcome
from ssp_revenue.operate.runtime import Services

log = logging.getLogger(__name__)
STEP = "statement"
REISSUE_STEP = "reissue"
Connectors = Callable[[SspConfig], ReportConnector]


def due_day(terms_day: int, month: Month) -> dt.date:
    return month.next().first.replace(day=terms_day)


def months_to_check(today: dt.date, start: dt.date | None, count: int,
                    end: dt.date | None = None) -> list[Month]:
    """The last ``count`` ended months in scope (from the start date's month to the end
    date's), oldest first."""
    months = []
    month = Month.before(today)
    for _ in range(count):
        if start is not None and month.last < start:
            break
        if end is None or month.first <= end:
            months.append(month)
        month = Month.before(month.first)
    return months[::-1]


@dataclasses.dataclass
class MonthResult:
    ssp: str
    month: Month
    state: str  # awaiting, rejected, waiting, within_tolerance, beyond_tolerance, overdue
    detail: str = ""
    statement_id: str = ""
    reissued: int | None = None


def load(config: SspConfig, month: Month, body: bytes, services: Services,
         ) -> tuple[MonthResult, list[dict[str, Any]]]:
    """``ssp-revenue statement load``: an operator's file, landed, validated and reconciled
    like a fetched one, with its incidents settled. Raises ActionableFailure if it opened one."""
    if config.statement is None:
        raise PipelineError("the registry declares no statement for this SSP: add a statement: block "
                            "to its entry in ssps.yaml", ssp=config.name)
    runtime.bootstrap(services)
    now = services.clock.now()
    landing = lake.land(body, config, month, s3=services.s3, bucket=services.bucket, now=now,
                        today=calendar.as_local(now, services.settings.tz).date(), source="upload")
    outcomes: list[StepOutcome] = []
    ran: dict[str, list[str]] = {}
    result = check_month(config, month, None, services, outcomes, ran, landing)
    review = incidents.settle(config.name, outcomes, ran, s3=services.s3, catalog=services.catalog,
                              at=now, window_start=services.window_start(now))
    if review.opened:
        raise ActionableFailure([o for o in outcomes if o.severity is Severity.ACTIONABLE], review.notices())
    return result, review.notices()


def _outcome(config: SspConfig, month: Month, reason: Reason | None, detail: str,
             severity: Severity = Severity.ACTIONABLE) -> StepOutcome:
    return StepOutcome(config.name, month.first, STEP, severity, f"{config.name} {month}: {detail}", reason)


def check_month(config: SspConfig, month: Month, connector: ReportConnector | None, services: Services,
                outcomes: list[StepOutcome], ran: dict[str, list[str]],
                landing: lake.Landing | None = None) -> MonthResult:
    """One (SSP, month): every step above; its outcomes and evidence appended.

    ``landing`` is an uploaded body's verdict; otherwise the SSP's API or bucket is asked.
    A statement the SSP still serves after it was refused keeps its incident open.
    """
    terms = config.statement
    assert terms is not None
    settings, s3, catalog = services.settings, services.s3, services.catalog
    now = services.clock.now()
    today = calendar.as_local(now, settings.tz).date()
    if landing is None and connector is not None and terms.source != "upload":
        try:
            body = connector.fetch_statement(month)
        except (PipelineError, NotImplementedError) as exc:
            body = None  # the daily runs page for the SSP's credentials; a statement can wait a day
            outcomes.append(_outcome(config, month, None, f"statement fetch failed: {exc}",
                                     Severity.CONVERGING))
        if body is not None:
            landing = lake.land(body, config, month, s3=s3, bucket=services.bucket, now=now, today=today,
                                source=terms.source)
    if landing is not None and landing.error is not None:
        outcomes.append(_outcome(config, month, Reason.STATEMENT_REJECTED,
                                 f"{landing.error}; quarantined, nothing else changed"))
    current = lake.publish(config, month, s3=s3, catalog=catalog)
    if current is None:
        due = due_day(terms.expected_day, month)
        if lake.rejected(config.name, month, s3=s3, bucket=services.bucket):
            return MonthResult(config.name, month, "rejected", "only rejected statements so far")
        if today > due + dt.timedelta(days=terms.grace_days):
            outcomes.append(_outcome(config, month, Reason.STATEMENT_OVERDUE,
                                     f"no statement yet: expected on {due}, {terms.grace_days} days' grace "
                                     f"ended {due + dt.timedelta(days=terms.grace_days)}"))
            return MonthResult(config.name, month, "overdue")
        return MonthResult(config.name, month, "awaiting", f"expected on {due}")
    if landing is not None and landing.error is not None:
        # Still refused: what is in force stays booked; no evidence this run that it is over.
        return MonthResult(config.name, month, "rejected", str(landing.error), current.statement.statement_id)
    statement = current.statement
    inputs = tables.AllocationInputs.from_config(settings.config_dir)
    fingerprint = reconcile.inputs_fingerprint(config, month, statement, s3=s3, bucket=services.bucket,
                                               inputs=inputs)
    done = reconcile.reconciled_with(config.name, month, fingerprint, catalog)
    if done is not None:  # the same inputs as last time: the same result, nothing to write
        found = MonthResult(config.name, month, done.get("status", ""), done.get("summary", ""),
                            statement.statement_id)
        ran.setdefault(STEP, []).append(month.first.isoformat())
        if found.state == reconcile.BEYOND:
            outcomes.append(_variance(config, month, found.detail))
        else:
            _reissue(config, month, statement.statement_id, services, outcomes, ran, found, inputs)
        return found
    try:
        result = reconcile.reconcile(config, statement, settings=settings, s3=s3, catalog=catalog,
                                     inputs=inputs)
    except reconcile.NotYetReconcilable as exc:
        outcomes.append(_outcome(config, month, None, str(exc), Severity.CONVERGING))
        return MonthResult(config.name, month, "waiting", str(exc), statement.statement_id)
    found = MonthResult(config.name, month, result.status, result.summary(), statement.statement_id)
    ran.setdefault(STEP, []).append(month.first.isoformat())
    if result.within:
        trueup.book(result.true_up(), s3=s3, catalog=catalog)
    # Recorded after the true-up: a recorded result says its true-up is booked.
    reconcile.record(result, s3=s3, catalog=catalog, now=now, fingerprint=fingerprint)
    if not result.within:
        outcomes.append(_variance(config, month, result.summary()))
        return found
    _reissue(config, month, statement.statement_id, services, outcomes, ran, found, inputs)
    return found


def _variance(config: SspConfig, month: Month, summary: str) -> StepOutcome:
    return _outcome(config, month, Reason.STATEMENT_VARIANCE,
                    f"{summary}. No true-up booked: check the statement's lines against revenue_final and "
                    "revenue_adjustments, and ask the SSP for a corrected statement")


def _reissue(config: SspConfig, month: Month, statement_id: str, services: Services,
             outcomes: list[StepOutcome], ran: dict[str, list[str]], found: MonthResult,
             inputs: tables.AllocationInputs) -> None:
    """A closed month gains its true-up: reissued, unless a correction changes what was issued."""
    settings, s3, catalog = services.settings, services.s3, services.catalog

    def evidence() -> None:  # the latest issue carries the statement in force (or none is needed)
        ran.setdefault(REISSUE_STEP, []).append(month.first.isoformat())

    on_record = close.issues(s3, settings.bucket, month)
    if not on_record:
        evidence()
        return
    body, manifest = close.read_issue(s3, settings.bucket, month, on_record[-1])
    names = sorted({k.split("/", 1)[0] for k in manifest.get("frozen_versions", {})}) or [config.name]
    issued_with = (manifest.get("statements") or {}).get(config.name)
    if issued_with == statement_id:
        evidence()
        return
    if issued_with is None:  # closed before its first statement: reissued (the same bytes: kept)
        issue = close.close_month(month, names, settings=settings, s3=s3, catalog=catalog, inputs=inputs,
                                  now=services.clock.now(), reissue=True)
        if issue.state == "reissued":
            runs.file_report(month, names, issue, services, inputs)
            found.reissued = issue.issue
            log.info("%s: %s closed before its statement: reissued as issue %s", config.name, month,
                     issue.issue)
        evidence()
        return
    figures = close.month_figures(month, names, settings=settings, s3=s3, catalog=catalog, inputs=inputs)
    if figures.csv_bytes() == body:
        evidence()
        return
    before = close.parse_csv(body)
    change = (sum(int(r["total_jpy"]) for r in figures.rows if r["ssp"] == config.name)
              - sum(int(r["total_jpy"]) for r in before if r["ssp"] == config.name))
    outcomes.append(_outcome(
        config, month, Reason.STATEMENT_CORRECTED,
        f"statement {statement_id} replaces {issued_with} after {month} was closed as "
        f"issue {on_record[-1]}; {config.name}'s total changes by {change:+} JPY. Tell finance, then "
        f"reissue on purpose: ssp-revenue close --month {month} --reissue"))


def statement_run(at: dt.datetime, ssps: list[SspConfig], services: Services, connectors: Connectors,
                  ) -> tuple[list[MonthResult], list[dict[str, Any]]]:
    """Every SSP with a statement, its recent months; the results and the incident notices.

    Raises ``ActionableFailure`` (with the notices) when it opened an incident.
    """
    settings = services.settings
    runtime.bootstrap(services)
    runtime.start_run(settings, services.clock, at)
    now = services.clock.now()
    today = calendar.as_local(now, settings.tz).date()
    results: list[MonthResult] = []
    notices: list[dict[str, Any]] = []
    opened: list[StepOutcome] = []
    for config in ssps:
        if config.statement is None:
            continue
        outcomes: list[StepOutcome] = []
        ran: dict[str, list[str]] = {}
        connector = None
        if config.statement.source != "upload":
            try:
                connector = connectors(config)
            except Exception as exc:  # a missing Connection: the daily runs page for it
                log.info("%s: no connector for its statement this run: %s", config.name, exc)
        for month in months_to_check(today, settings.start_date, settings.statement_months,
                                     settings.end_date):
            results.append(check_month(config, month, connector, services, outcomes, ran))
        for outcome in outcomes:
            (log.warning if outcome.severity is Severity.ACTIONABLE else log.info)("%s", outcome.detail)
        review = incidents.settle(config.name, outcomes, ran, s3=services.s3, catalog=services.catalog,
                                  at=now, window_start=services.window_start(now))
        notices += review.notices()
        if review.opened:
            opened += [o for o in outcomes if o.severity is Severity.ACTIONABLE]
    if opened:
        raise ActionableFailure(opened, notices)
    return results, notices
