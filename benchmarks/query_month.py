"""Query a month: 30 days x 4 SSPs x N rows published, frozen and allocated on the local
stack, then aggregated through the local engine (what ``ssp-revenue query`` runs)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess  # nosec B404: the CLI, timed as users run it
import sys
import time

from benchmarks.common import median, write_table
from benchmarks.session import LOCAL, Session, post, rows_per_day
from ssp_revenue.allocate import tables
from ssp_revenue.core import calendar, registry
from ssp_revenue.core.clock import FixedClock
from ssp_revenue.finalize import freeze
from ssp_revenue.ingest.connectors import RetryPolicy, build_connector, connector_class
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.lake import store
from ssp_revenue.lake.publish import publish_batch
from ssp_revenue.operate.query import LocalEngine

SSPS = ("adpulse", "xchange", "nihon", "gamnet")
QUERIES = {
    "allocation_final by date and target":
        "SELECT revenue_date, target, sum(revenue_jpy) AS jpy FROM allocation_final "
        "GROUP BY 1, 2 ORDER BY 1, 2",
    "revenue_final by date and media (every row)":
        "SELECT revenue_date, media, sum(revenue) AS revenue, sum(impressions) AS impressions "
        "FROM revenue_final GROUP BY 1, 2 ORDER BY 1, 2",
}


def load_month(session: Session, days: list[dt.date], rows: int) -> None:
    settings, services = session.settings, session.services
    configs = [registry.find(registry.load_registry(settings.config_dir / "ssps.yaml"), s) for s in SSPS]
    inputs = tables.AllocationInputs.from_config(settings.config_dir)
    for ssp in SSPS:
        # The emulator's request-rate limit is switched off: it would time its windows, not us.
        post(session.state["emulator_url"] + "/_control/profile",
             {"ssp": ssp, "rows": rows_per_day(ssp, rows), "rate_limit_per_window": 0})
    for day in days:
        at = session.at(day) + dt.timedelta(hours=12)
        post(session.state["emulator_url"] + "/_control/clock", {"now": at.isoformat()})
        clock = FixedClock(at)
        for config in configs:
            connector = build_connector(
                config,
                emulator_credentials(config.name, session.state["emulator_url"], settings.aws_endpoint),
                settings, clock, retry=RetryPolicy(attempts=3))
            report = connector.fetch(day)
            key = store.land_raw(services.s3, settings.bucket, ssp=config.name, revenue_date=day,
                                body=report.body, extension=report.extension,
                                facts=report.facts).key
            parsed = connector_class(config.style).parse(config, report.body.read(), report.facts, day)
            publish_batch(parsed.table, ssp=config.name, revenue_date=day, fetched_at=at, raw_object=key,
                          expected_version=None, s3=services.s3, catalog=services.catalog, clock=clock)
            now = calendar.cutoff(day, settings.tz, settings.freeze_hours) + dt.timedelta(hours=1)
            result = freeze.freeze_date(config.name, day, settings=settings, s3=services.s3,
                                        catalog=services.catalog, now=now)
            assert result.entry is not None
            tables.allocate_frozen(result.entry, inputs=inputs, s3=services.s3, catalog=services.catalog)


def main(session: Session, rows: int, runs: int) -> str:
    days = [dt.date(2026, 8, 1) + dt.timedelta(days=n) for n in range(30)]
    started = time.perf_counter()
    load_month(session, days, rows)
    loading = time.perf_counter() - started
    engine = LocalEngine(session.settings, session.services.catalog.glue, session.services.s3)
    table = []
    for name, sql in QUERIES.items():
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            result = engine.query(sql)
            timings.append(time.perf_counter() - started)
        table.append([name, f"{median(timings):.2f}", f"{min(timings):.2f}", f"{max(timings):.2f}",
                      str(len(result.rows))])
    env = {**os.environ, "SSP_REVENUE_LOCAL_DIR": str(LOCAL), "SSP_REVENUE_BUCKET": session.settings.bucket,
           "SSP_REVENUE_GLUE_DATABASE": session.settings.glue_database}
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ssp_revenue.operate.cli", "query",  # nosec B603
                        QUERIES["allocation_final by date and target"]], env=env, check=True,
                       capture_output=True)
        timings.append(time.perf_counter() - started)
    table.append(["the first query via `ssp-revenue query` (new process each time)", f"{median(timings):.2f}",
                  f"{min(timings):.2f}", f"{max(timings):.2f}", ""])
    return write_table(
        "query_month",
        f"A month: {len(days)} days x {len(SSPS)} SSPs x {rows:,} rows, published, frozen, allocated "
        f"(median of {runs})",
        ["query (local engine: DuckDB over the Glue partition locations)", "median s", "min s", "max s",
         "result rows"], table,
        f"Loading the month (fetch, land, parse, publish, freeze, allocate; no validation) "
        f"took {loading:.0f} s.",
    )
