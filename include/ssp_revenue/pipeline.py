"""The daily steps for one SSP over its due dates: fetch -> validate -> publish.

Each step takes a ``Job`` (plain JSON, so it travels through XCom or a CLI run
alike), does its work date by date so one bad date never blocks another, and
records every outcome, classified by the convergence policy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from ssp_revenue import adjustments, allocation, calendar, events, freeze, lake
from ssp_revenue.alerts import Alert, AlertLedger
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.clock import Clock, parse_instant
from ssp_revenue.connectors import ParsedReport, ReportConnector, connector_class
from ssp_revenue.content import content_hash
from ssp_revenue.errors import PipelineError, Reason, ValidationFailed
from ssp_revenue.outcomes import ActionableFailure, Severity, StepOutcome
from ssp_revenue.publish import VERSION_CHARS, publish_batch
from ssp_revenue.registry import SspConfig
from ssp_revenue.settings import Settings
from ssp_revenue.validate import validate

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Services:
    """What a step needs from outside: settings, a clock and the lake's clients."""

    settings: Settings
    clock: Clock
    s3: Any
    catalog: GlueCatalog

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    def cutoff(self, revenue_date: dt.date) -> dt.datetime:
        return calendar.cutoff(revenue_date, self.settings.tz, self.settings.freeze_hours)


def new_job(ssp: str, dates: list[dt.date], frozen: set[dt.date] | None = None) -> dict[str, Any]:
    return {
        "ssp": ssp,
        "dates": [d.isoformat() for d in dates],
        "frozen": sorted(d.isoformat() for d in (frozen or set()) if d in set(dates)),
        "fetched": [],
        "validated": [],
        "published": [],
        "outcomes": [],
    }


def _metric(job: dict[str, Any], step: str, name: str, value: float) -> None:
    """A number operators want on a dashboard; the Airflow layer emits it (StatsD/OTel)."""
    job.setdefault("metrics", []).append({"step": step, "name": name, "value": value})


def _record(job: dict[str, Any], outcome: StepOutcome) -> None:
    job["outcomes"].append(outcome.to_dict())
    level = logging.WARNING if outcome.severity is Severity.ACTIONABLE else logging.INFO
    log.log(level, "%s %s %s [%s] %s", outcome.step, outcome.ssp, outcome.revenue_date,
            outcome.severity.value, outcome.detail)


def _failed(job: dict[str, Any], error: PipelineError, step: str, day: dt.date,
            services: Services) -> None:
    error.located(ssp=job["ssp"], revenue_date=day)
    _record(job, StepOutcome.failed(
        error, ssp=job["ssp"], revenue_date=day, step=step, now=services.clock.now(),
        cutoff=services.cutoff(day), grace=services.settings.grace,
        frozen=day.isoformat() in job.get("frozen", ()),
    ))


def fetch_step(job: dict[str, Any], connector: ReportConnector, services: Services) -> dict[str, Any]:
    """Fetch every due date and land each body raw; nothing here parses or judges it."""
    for text in job["dates"]:
        day = dt.date.fromisoformat(text)
        try:
            report = connector.fetch(day)
            fetched_at = services.clock.now()
            key = lake.land_raw(
                services.s3, services.bucket, ssp=job["ssp"], revenue_date=day,
                fetched_at=fetched_at, body=report.body, extension=report.extension,
                facts=report.facts,
            )
        except PipelineError as exc:
            _failed(job, exc, "fetch", day, services)
            continue
        job["fetched"].append(
            {"revenue_date": text, "raw_object": key, "fetched_at": fetched_at.isoformat()}
        )
        _metric(job, "fetch", "reports_fetched", 1)
        _metric(job, "fetch", "bytes_fetched", len(report.body))
        _record(job, StepOutcome.ok(job["ssp"], day, "fetch", f"landed {key}"))
    return job


def fetch_unavailable(job: dict[str, Any], message: str, reason: Reason,
                      services: Services) -> dict[str, Any]:
    """The SSP cannot be asked at all (no credentials): every due date records why."""
    for text in job["dates"]:
        _failed(job, PipelineError(message, reason=reason), "fetch", dt.date.fromisoformat(text),
                services)
    return job


def read_landed(config: SspConfig, services: Services, key: str, day: dt.date) -> ParsedReport:
    """Parse a landed raw body: the only input of validate and publish, so both see the same rows."""
    body, facts = lake.read_raw(services.s3, services.bucket, key)
    return connector_class(config.style).parse(config, body, facts, day)


def validate_step(job: dict[str, Any], config: SspConfig, services: Services) -> dict[str, Any]:
    """Parse and validate each landed body; failures go to quarantine with the reason."""
    for item in job["fetched"]:
        day = dt.date.fromisoformat(item["revenue_date"])
        key = item["raw_object"]
        try:
            parsed = read_landed(config, services, key, day)
            report = validate(parsed, config=config, revenue_date=day, file=key)
        except PipelineError as exc:
            exc.located(ssp=config.name, revenue_date=day, file=key)
            details = exc.failures if isinstance(exc, ValidationFailed) else []
            where = lake.quarantine(
                services.s3, services.bucket, error=exc, raw_object=key,
                fetched_at=parse_instant(item["fetched_at"]),
                quarantined_at=services.clock.now(), details=details,
            )
            log.info("quarantined %s -> %s", key, where)
            _failed(job, exc, "validate", day, services)
            continue
        version = content_hash(parsed.table)[:VERSION_CHARS]
        job["validated"].append({**item, "version": version, "totals": report.totals.to_dict()})
        _metric(job, "validate", "rows_validated", report.totals.rows)
        _record(job, StepOutcome.ok(config.name, day, "validate",
                                    f"{report.totals.rows} rows passed, version {version}"))
    return job


def publish_step(job: dict[str, Any], config: SspConfig, services: Services) -> dict[str, Any]:
    """Publish each validated batch (re-read from raw, re-hashed, must match)."""
    for item in job["validated"]:
        day = dt.date.fromisoformat(item["revenue_date"])
        key = item["raw_object"]
        try:
            parsed = read_landed(config, services, key, day)
            result = publish_batch(
                parsed.table, ssp=config.name, revenue_date=day,
                fetched_at=parse_instant(item["fetched_at"]), raw_object=key,
                expected_version=item["version"], s3=services.s3,
                catalog=services.catalog, clock=services.clock,
            )
        except PipelineError as exc:
            _failed(job, exc, "publish", day, services)
            continue
        job["published"].append(result.to_dict())
        if result.outcome == "published":
            _metric(job, "publish", "rows_published", result.totals.rows)
            _metric(job, "publish", "versions_switched", 1)
        _record(job, StepOutcome.ok(
            config.name, day, "publish",
            f"{result.outcome} version {result.version} ({result.totals.rows} rows, "
            f"revenue {result.totals.revenue})",
        ))
    return job


def freeze_step(job: dict[str, Any], services: Services) -> dict[str, Any]:
    """Freeze every due date whose cutoff has passed; book restatements of frozen ones."""
    settings = services.settings
    for text in job["dates"]:
        day = dt.date.fromisoformat(text)
        now = services.clock.now()
        try:
            result = freeze.freeze_date(job["ssp"], day, settings=settings, s3=services.s3,
                                        catalog=services.catalog, now=now)
            if result.entry is None:
                continue  # still open: the cutoff has not passed
            entry = result.entry
            if result.state == "frozen":
                detail = f"froze version {entry.version} ({entry.row_count} rows, revenue {entry.revenue})"
                _record(job, StepOutcome.ok(job["ssp"], day, "freeze", detail))
                start = calendar.date_start(day, settings.tz)
                _metric(job, "freeze", "hours_to_freeze", (entry.finalized_at - start).total_seconds() / 3600)
            if text not in job.setdefault("frozen", []):
                job["frozen"].append(text)
            if day >= now.astimezone(settings.tz).date() - dt.timedelta(days=settings.adjustment_days):
                booked = adjustments.reconcile(result.entry, settings=settings, s3=services.s3,
                                               catalog=services.catalog, now=now)
                if booked.sequence is not None:
                    _metric(job, "freeze", "restatement_abs", float(abs(booked.revenue_delta)))
                    _record(job, StepOutcome.ok(
                        job["ssp"], day, "adjust",
                        f"restatement after the freeze: batch {booked.sequence}, {booked.rows} keys, "
                        f"revenue {booked.revenue_delta:+}; drift from frozen {booked.drift_from_frozen:+}"))
                adjustments.check_threshold(booked, result.entry, settings)
        except PipelineError as exc:
            _failed(job, exc, "freeze", day, services)
    return job


def allocate_step(job: dict[str, Any], services: Services,
                  inputs: allocation.AllocationInputs | None = None) -> dict[str, Any]:
    """Split every frozen, not yet allocated date by the rules in effect on it.

    A missing FX rate or delivery metric keeps that date out (converging for the
    grace period after its cutoff, then actionable); a bad rules file allocates
    nothing and is actionable at once.
    """
    frozen = sorted(job.get("frozen", []))
    if not frozen:
        return job
    if inputs is None:
        try:
            inputs = allocation.AllocationInputs.from_config(services.settings.config_dir)
        except ValueError as exc:  # RulesError, or a bad rates or delivery file
            error = PipelineError(f"allocation inputs rejected, nothing allocated: {exc}",
                                  reason=Reason.RULES)
            _failed(job, error, "allocate", dt.date.fromisoformat(frozen[-1]), services)
            return job
    for text in frozen:
        day = dt.date.fromisoformat(text)
        try:
            entry = freeze.read_ledger(services.s3, services.bucket, job["ssp"], day)
            if entry is None:
                continue
            state = allocation.allocate_frozen(entry, inputs=inputs, s3=services.s3,
                                               catalog=services.catalog)
        except LookupError as exc:
            _failed(job, PipelineError(str(exc), reason=Reason.RULES), "allocate", day, services)
            continue
        except PipelineError as exc:
            _failed(job, exc, "allocate", day, services)
            continue
        if state == "written":
            _metric(job, "allocate", "dates_allocated", 1)
            detail = f"allocated version {entry.version} with rules {inputs.book.version}"
            _record(job, StepOutcome.ok(job["ssp"], day, "allocate", detail))
        elif state == "kept":
            log.info("allocate %s %s: kept the allocation made with other rules (recompute to change it)",
                     job["ssp"], day)
    return job


def outcomes(job: dict[str, Any]) -> list[StepOutcome]:
    return [StepOutcome.from_dict(o) for o in job["outcomes"]]


def settle(job: dict[str, Any], services: Services) -> list[Alert]:
    """End of an SSP's run: record events, claim alerts, fail loudly on new actionable ones.

    Converging outcomes were logged and stay in pipeline_events. Each actionable
    (SSP, date, reason) is alerted once: later runs that see it again only log it.
    """
    seen = outcomes(job)
    events.record(seen, s3=services.s3, catalog=services.catalog, clock=services.clock)
    ledger = AlertLedger(services.s3, services.bucket)
    new: list[Alert] = []
    for outcome in seen:
        if outcome.severity is not Severity.ACTIONABLE:
            continue
        alert = Alert.from_outcome(outcome)
        if alert in new:
            continue
        if ledger.claim(alert, services.clock.now()):
            new.append(alert)
        else:
            log.warning("already alerted, not again: %s %s %s", alert.ssp, alert.revenue_date,
                        alert.reason)
    job["alerts"] = [a.to_dict() for a in new]
    return new


def raise_if_actionable(job: dict[str, Any], services: Services | None = None) -> None:
    """Fail with every new actionable outcome (all of them when no alert ledger is given)."""
    if services is not None:
        alerts = settle(job, services)
        if alerts:
            raise ActionableFailure([o for o in outcomes(job) if o.severity is Severity.ACTIONABLE
                                     and Alert.from_outcome(o) in alerts], alerts)
        return
    actionable = [o for o in outcomes(job) if o.severity is Severity.ACTIONABLE]
    if actionable:
        raise ActionableFailure(actionable, [Alert.from_outcome(o) for o in actionable])


def run_ssp(
    config: SspConfig, dates: list[dt.date], connector: ReportConnector, services: Services
) -> dict[str, Any]:
    """Every step in one process (CLI, demo, tests); the same code the DAG runs."""
    frozen = freeze.frozen_dates(services.s3, services.bucket, config.name)
    job = new_job(config.name, dates, frozen)
    fetch_step(job, connector, services)
    validate_step(job, config, services)
    publish_step(job, config, services)
    freeze_step(job, services)
    allocate_step(job, services)
    return job
