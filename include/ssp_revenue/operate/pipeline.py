"""The daily steps for one SSP over its due dates: fetch -> validate -> publish.

Each step takes a ``Job`` (plain JSON, so it travels through XCom or a CLI run
alike), does its work date by date so one bad date never blocks another, and
records every outcome, classified by the convergence policy.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from ssp_revenue.allocate import tables
from ssp_revenue.core import calendar, schema
from ssp_revenue.core.clock import FixedClock, parse_instant
from ssp_revenue.core.errors import PipelineError, Reason, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.finalize import adjustments, freeze
from ssp_revenue.ingest.connectors import ReportConnector, connector_class
from ssp_revenue.ingest.connectors.base import ReportBatches
from ssp_revenue.ingest.validate import validate_batches
from ssp_revenue.lake import logs, publish, store
from ssp_revenue.lake.publish import VERSION_CHARS
from ssp_revenue.operate import events, incidents
from ssp_revenue.operate.outcomes import ActionableFailure, Severity, StepOutcome
from ssp_revenue.operate.runtime import Services

log = logging.getLogger(__name__)


def new_job(ssp: str, dates: list[dt.date], frozen: set[dt.date] | None = None) -> dict[str, Any]:
    return {
        "ssp": ssp,
        "dates": [d.isoformat() for d in dates],
        "frozen": sorted(d.isoformat() for d in (frozen or set()) if d in set(dates)),
        "fetched": [],
        "validated": [],
        "published": [],
        "outcomes": [],
        "ran": {},
    }


def _ran(job: dict[str, Any], step: str, day: dt.date) -> None:
    """The step processed this date in this run: evidence an incident's problem is gone."""
    done = job.setdefault("ran", {}).setdefault(step, [])
    if day.isoformat() not in done:
        done.append(day.isoformat())


def _metric(job: dict[str, Any], step: str, name: str, value: float) -> None:
    """A number operators want on a dashboard; the Airflow layer emits it (StatsD/OTel)."""
    job.setdefault("metrics", []).append({"step": step, "name": name, "value": value})


def _record(job: dict[str, Any], outcome: StepOutcome) -> None:
    job["outcomes"].append(outcome.to_dict())
    level = logging.WARNING if outcome.severity is Severity.ACTIONABLE else logging.INFO
    log.log(level, "%s %s %s [%s] %s", outcome.step, outcome.ssp, outcome.revenue_date,
            outcome.severity.value, outcome.detail)


def _freezable(job: dict[str, Any], day: dt.date, now: dt.datetime, services: Services) -> bool:
    """Has the date its freezable version (frozen, or validated and fetched by the cutoff)?

    Only asked past cutoff + grace: before that a transient failure converges anyway.
    """
    text = day.isoformat()
    if text in job.get("frozen", ()):
        return True
    cut = services.cutoff(day)
    if now < cut + services.settings.grace:
        return False
    known: dict[str, bool] = job.setdefault("freezable", {})
    if text not in known:
        history = publish.read_publish_log(services.s3, services.catalog, job["ssp"], day)
        chosen, late = freeze.choose_version(history, cut, dt.timedelta(0))  # the freeze's own rule
        known[text] = chosen is not None and not late
    return known[text]


def _failed(job: dict[str, Any], error: PipelineError, step: str, day: dt.date,
            services: Services, now: dt.datetime) -> None:
    """Record a failure, judged against the step's one instant ``now``."""
    error.located(ssp=job["ssp"], revenue_date=day)
    _record(job, StepOutcome.failed(
        error, ssp=job["ssp"], revenue_date=day, step=step, now=now,
        cutoff=services.cutoff(day), grace=services.settings.grace,
        freezable=_freezable(job, day, now, services),
    ))


def fetch_step(job: dict[str, Any], connector: ReportConnector, services: Services) -> dict[str, Any]:
    """Fetch every due date and land each body raw; nothing here parses or judges it.

    Failures are judged against the step's start; only ``fetched_at`` is taken per fetch.
    """
    now = services.clock.now()
    for text in job["dates"]:
        day = dt.date.fromisoformat(text)
        try:
            report = connector.fetch(day)
            _ran(job, "fetch", day)
            fetched_at = services.clock.now()
            landed = store.land_raw(
                services.s3, services.bucket, ssp=job["ssp"], revenue_date=day,
                body=report.body, extension=report.extension, facts=report.facts,
            )
            facts = json.loads(json.dumps(dict(report.facts), sort_keys=True, default=str))
            identity = type(connector).report_identity(landed.sha256, facts)
            log_fetch(job["ssp"], day, fetched_at, landed, identity, facts, services)
        except PipelineError as exc:
            if exc.reason is not Reason.AUTH:
                _ran(job, "fetch", day)  # the SSP answered: our credentials were good
            _failed(job, exc, "fetch", day, services, now)
            continue
        job["fetched"].append(
            {"revenue_date": text, "raw_object": landed.key, "fetched_at": fetched_at.isoformat(),
             "report": identity, "facts": facts}
        )
        _metric(job, "fetch", "reports_fetched", 1)
        _metric(job, "fetch", "bytes_fetched", report.body.size)
        _metric(job, "fetch", "bytes_stored", landed.size if landed.stored else 0)
        what = "landed" if landed.stored else "same body as"
        _record(job, StepOutcome.ok(job["ssp"], day, "fetch", f"{what} {landed.key}"))
    return job


def log_fetch(ssp: str, day: dt.date, fetched_at: dt.datetime, landed: store.LandedBody,
              identity: str, facts: dict[str, Any], services: Services) -> None:
    """One fetch_log row per fetch: the proof of what was served when, stored or not."""
    row = {"revenue_date": day, "ssp": ssp, "fetched_at": fetched_at, "sha256": landed.sha256,
           "bytes": landed.size, "report": identity, "facts": json.dumps(facts, sort_keys=True),
           "raw_object": store.s3_uri(services.bucket, landed.key), "stored": landed.stored}
    logs.append(services.s3, services.catalog, "fetch_log", ssp, day,
                pa.Table.from_pylist([row], schema=schema.FETCH_LOG), at=fetched_at,
                tag=landed.sha256[:12])


def fetch_unavailable(job: dict[str, Any], message: str, reason: Reason,
                      services: Services) -> dict[str, Any]:
    """The SSP cannot be asked at all (no credentials): every due date records why."""
    now = services.clock.now()
    for text in job["dates"]:
        _failed(job, PipelineError(message, reason=reason), "fetch", dt.date.fromisoformat(text),
                services, now)
    return job


def read_landed(config: SspConfig, services: Services, item: dict[str, Any], day: dt.date) -> ReportBatches:
    """Read a landed raw body a batch at a time: the only input of validate and publish,
    so both see the same rows.

    The fetch's own facts come with the item (a body stored once keeps only its
    first landing's facts beside it).
    """
    key = item["raw_object"]
    facts = item["facts"] if "facts" in item else store.raw_facts(services.s3, services.bucket, key)
    return connector_class(config.style).read_batches(
        config, lambda: store.open_raw(services.s3, services.bucket, key), facts, day)


class _OnlyBatch:
    """The one record batch of a report that is a single batch, kept from the pass that read it.

    Most days are one batch (~250k rows); staging their version then needs no second
    read of the report. A report of several batches keeps none (memory stays one batch).
    """

    def __init__(self, report: ReportBatches) -> None:
        self.stated_totals = report.stated_totals
        self._source = report.batches
        self._kept: list[pa.RecordBatch] = []
        self._many = False

    def watched(self) -> ReportBatches:
        def batches() -> Any:
            for batch in self._source:
                if self._kept or self._many:
                    self._many, self._kept = True, []
                else:
                    self._kept.append(batch)
                yield batch
        return ReportBatches(batches(), self.stated_totals)

    def again(self) -> list[pa.RecordBatch] | None:
        return None if self._many else list(self._kept)


def _stage(item: dict[str, Any], config: SspConfig, services: Services, day: dt.date, version: str,
           rows: int, kept: list[pa.RecordBatch] | None) -> dict[str, Any] | None:
    """Write the validated version's files for load to switch to; None if that failed (load
    then publishes from the raw report, and reports a storage error that persists)."""
    batches = kept if kept is not None else read_landed(config, services, item, day).batches
    try:
        staged = publish.stage_batches(
            batches, ssp=config.name, revenue_date=day, fetched_at=parse_instant(item["fetched_at"]),
            raw_object=item["raw_object"], version=version, rows=rows, s3=services.s3,
            bucket=services.bucket)
    except PipelineError as exc:
        log.warning("%s %s: version %s not staged, load publishes it from raw: %s",
                    config.name, day, version, exc)
        return None
    return staged.to_dict()


def validate_step(job: dict[str, Any], config: SspConfig, services: Services) -> dict[str, Any]:
    """Parse and validate each landed body; failures go to quarantine with the reason.

    What passed is staged (its version's files written, nothing switched) from the
    rows just validated, so load switches to it without reading the report again.
    """
    now = services.clock.now()
    for item in job["fetched"]:
        day = dt.date.fromisoformat(item["revenue_date"])
        key = item["raw_object"]
        _ran(job, "validate", day)
        live = publish.live_report(services.catalog, config.name, day)
        if live is not None and live.parameters["report"] == item.get("report"):
            version = live.parameters["source_version"]
            job["validated"].append({**item, "version": version, "unchanged": True,
                                     "rows": int(live.parameters["row_count"])})
            _record(job, StepOutcome.ok(config.name, day, "validate",
                                        f"same report as live version {version}: validation reused"))
            continue
        try:
            again = functools.partial(read_landed, config, services, item, day)
            only = _OnlyBatch(again())
            report = validate_batches(only.watched(), config=config, revenue_date=day, file=key, again=again)
        except PipelineError as exc:
            exc.located(ssp=config.name, revenue_date=day, file=key)
            details = exc.failures if isinstance(exc, ValidationFailed) else []
            where = store.quarantine(
                services.s3, services.bucket, error=exc, raw_object=key,
                fetched_at=parse_instant(item["fetched_at"]),
                quarantined_at=now, details=details,
            )
            log.info("quarantined %s -> %s", key, where)
            _failed(job, exc, "validate", day, services, now)
            continue
        version = report.digest[:VERSION_CHARS]
        staged = _stage(item, config, services, day, version, report.totals.rows, only.again())
        job["validated"].append({**item, "version": version, "totals": report.totals.to_dict(),
                                 **({"staged": staged} if staged else {})})
        _metric(job, "validate", "rows_validated", report.totals.rows)
        _record(job, StepOutcome.ok(config.name, day, "validate",
                                    f"{report.totals.rows} rows passed, version {version}"))
    return job


def _landed_batches(config: SspConfig, services: Services, item: dict[str, Any],
                    day: dt.date) -> Iterator[pa.RecordBatch]:
    """The landed report's batches, read only if iterated (a staged version needs none)."""
    yield from read_landed(config, services, item, day).batches


def publish_step(job: dict[str, Any], config: SspConfig, services: Services) -> dict[str, Any]:
    """Publish each validated batch: switch to the version validate staged, or (its files
    gone, or never staged) re-read it from raw, re-hash it (it must match) and write it."""
    now = services.clock.now()
    for item in job["validated"]:
        day = dt.date.fromisoformat(item["revenue_date"])
        key = item["raw_object"]
        try:
            live = publish.live_report(services.catalog, config.name, day) if item.get("unchanged") else None
            if live is not None and live.parameters["report"] == item.get("report"):
                result = publish.publish_unchanged(
                    live, fetched_at=parse_instant(item["fetched_at"]), raw_object=key,
                    s3=services.s3, catalog=services.catalog, clock=FixedClock(now))
            else:  # the staged version, or a full load (or the partition moved since validate:
                # load what was fetched)
                rows = int(item["rows"] if "rows" in item else item["totals"]["rows"])
                result = publish.publish_batches(
                    _landed_batches(config, services, item, day), ssp=config.name, revenue_date=day,
                    fetched_at=parse_instant(item["fetched_at"]), raw_object=key,
                    version=item["version"], rows=rows, s3=services.s3,
                    catalog=services.catalog, clock=FixedClock(now), report=item.get("report", ""),
                    staged=publish.Staged.from_dict(item["staged"]) if item.get("staged") else None,
                )
        except PipelineError as exc:
            _failed(job, exc, "publish", day, services, now)
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
    now = services.clock.now()
    for text in job["dates"]:
        day = dt.date.fromisoformat(text)
        _ran(job, "freeze", day)
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
                _ran(job, "adjust", day)
                adjustments.check_threshold(booked, result.entry, settings)
        except PipelineError as exc:
            _failed(job, exc, "freeze", day, services, now)
    return job


def allocate_step(job: dict[str, Any], services: Services,
                  inputs: tables.AllocationInputs | None = None) -> dict[str, Any]:
    """Split every frozen, not yet allocated date by the rules in effect on it.

    A missing FX rate or delivery metric keeps that date out (converging for the
    grace period after its cutoff, then actionable); a bad rules file allocates
    nothing and is actionable at once.
    """
    frozen = sorted(job.get("frozen", []))
    if not frozen:
        return job
    now = services.clock.now()
    if inputs is None:
        try:
            inputs = tables.AllocationInputs.from_config(services.settings.config_dir)
        except ValueError as exc:  # RulesError, or a bad rates or delivery file
            error = PipelineError(f"allocation inputs rejected, nothing allocated: {exc}",
                                  reason=Reason.RULES)
            _failed(job, error, "allocate", dt.date.fromisoformat(frozen[-1]), services, now)
            return job
    for text in frozen:
        day = dt.date.fromisoformat(text)
        try:
            entry = freeze.read_ledger(services.s3, services.bucket, job["ssp"], day)
            if entry is None:
                continue
            state = tables.allocate_frozen(entry, inputs=inputs, s3=services.s3,
                                               catalog=services.catalog)
        except LookupError as exc:
            _failed(job, PipelineError(str(exc), reason=Reason.RULES), "allocate", day, services, now)
            continue
        except PipelineError as exc:
            _failed(job, exc, "allocate", day, services, now)
            continue
        _ran(job, "allocate", day)
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


def settle(job: dict[str, Any], services: Services) -> incidents.Review:
    """End of an SSP's run: record events, then open, update and resolve its incidents.

    Converging outcomes were logged and stay in pipeline_events. Actionable ones
    become incidents keyed by the problem: a new one pages once (``opened``),
    one already open only gains dates, and an open one this run shows gone is
    resolved (``resolved``: the all-clear).
    """
    now = services.clock.now()
    seen = outcomes(job)
    events.record(seen, s3=services.s3, catalog=services.catalog, clock=FixedClock(now))
    result = incidents.settle(job["ssp"], seen, job.get("ran", {}), s3=services.s3,
                              catalog=services.catalog, at=now, window_start=services.window_start(now))
    for incident in result.updated:
        log.warning("incident %s still open, not paged again: %s", incident.incident_id,
                    ", ".join(d.isoformat() for d in sorted(incident.dates)))
    job["notices"] = result.notices()
    return result


def raise_if_actionable(job: dict[str, Any], services: Services) -> list[dict[str, Any]]:
    """Settle, then fail with the incidents this run opened (their pages); returns the
    notices (pages and all-clears) when it opened none."""
    result = settle(job, services)
    if result.opened:
        opened = {i.problem for i in result.opened}
        raise ActionableFailure(
            [o for o in outcomes(job) if o.severity is Severity.ACTIONABLE
             and incidents.Problem.of(o) in opened] or [o for o in outcomes(job)
                                                        if o.severity is Severity.ACTIONABLE],
            list(job["notices"]))
    return list(job["notices"])


def ingest_job(job: dict[str, Any], config: SspConfig, connector: ReportConnector,
               services: Services) -> dict[str, Any]:
    """Fetch and land every due date, then validate what landed: what the DAG's ``ingest``
    task does once it has built the connector from its Connection."""
    return validate_step(fetch_step(job, connector, services), config, services)


def load_job(job: dict[str, Any], config: SspConfig, services: Services) -> dict[str, Any]:
    """Publish what validation passed, freeze, book adjustments, allocate: the DAG's ``load``
    task before it settles."""
    publish_step(job, config, services)
    freeze_step(job, services)
    return allocate_step(job, services)


def run_job(job: dict[str, Any], config: SspConfig, connector: ReportConnector,
            services: Services) -> dict[str, Any]:
    """Every step of one SSP's job in one process: the same code the DAG's tasks run."""
    return load_job(ingest_job(job, config, connector, services), config, services)


def run_ssp(
    config: SspConfig, dates: list[dt.date], connector: ReportConnector, services: Services
) -> dict[str, Any]:
    """A job for ``dates`` through every step (CLI, demo, tests)."""
    frozen = freeze.frozen_dates(services.s3, services.bucket, config.name)
    return run_job(new_job(config.name, dates, frozen), config, connector, services)
