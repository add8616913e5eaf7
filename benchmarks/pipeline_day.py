"""One SSP-day at the finest grain: fetch (gzip CSV over HTTP) -> land raw -> parse ->
validate -> publish -> catalog switch, on the local stack; median of N runs, peak RSS."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path

from benchmarks.common import median, peak_rss_mib, timed, write_table
from ssp_revenue import lake, registry, runtime, stack
from ssp_revenue.clock import FixedClock
from ssp_revenue.connectors import RetryPolicy, connector_class
from ssp_revenue.credentials import emulator_credentials
from ssp_revenue.publish import publish_batch
from ssp_revenue.settings import Settings
from ssp_revenue.validate import validate

LOCAL = Path(".local") / "bench"


def _post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30):
        pass


def main(rows: int, runs: int) -> None:
    import os

    local_stack = stack.LocalStack(LOCAL)
    state = local_stack.up()
    os.environ.update(stack.LOCAL_AWS_ENV)
    try:
        settings = Settings(bucket="bench", glue_database="bench", region=state["region"],
                            aws_endpoint=state["s3_endpoint"], emulator_url=state["emulator_url"])
        services = runtime.services_for(settings)
        runtime.bootstrap(services)
        config = registry.find(registry.load_registry(settings.config_dir / "ssps.yaml"), "adpulse")
        _post(state["emulator_url"] + "/_control/profile",
              {"ssp": "adpulse", "rows": rows, "part_size": 8 * 1024 * 1024})
        phases: dict[str, list[float]] = {}
        for run in range(runs):
            day = dt.date(2026, 10, 1) + dt.timedelta(days=run)
            at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
            _post(state["emulator_url"] + "/_control/clock", {"now": at.isoformat()})
            clock = FixedClock(at)
            services.clock = clock
            connector = connector_class(config.style)(
                config, emulator_credentials("adpulse", state["emulator_url"]), clock=clock,
                retry=RetryPolicy(attempts=3),
            )
            with timed(phases, "total"):
                with timed(phases, "fetch (HTTP, gzip CSV)"):
                    report = connector.fetch(day)
                with timed(phases, "land raw"):
                    key = lake.land_raw(services.s3, settings.bucket, ssp="adpulse", revenue_date=day,
                                        fetched_at=at, body=report.body, extension=report.extension,
                                        facts=report.facts)
                with timed(phases, "parse + normalise"):
                    parsed = connector_class(config.style).parse(config, report.body, report.facts, day)
                with timed(phases, "validate (GX + exact totals)"):
                    validate(parsed, config=config, revenue_date=day, file=key)
                with timed(phases, "publish (hash, write, verify, switch, log)"):
                    publish_batch(parsed.table, ssp="adpulse", revenue_date=day, fetched_at=at,
                                  raw_object=key, expected_version=None, s3=services.s3,
                                  catalog=services.catalog, clock=clock)
        table = [[name, f"{median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}"]
                 for name, values in phases.items()]
        text = write_table(
            "pipeline_day",
            f"One SSP-day, {rows:,} rows: fetch -> publish (median of {runs})",
            ["phase", "median s", "min s", "max s"],
            table,
            f"Peak RSS of the benchmark process: {peak_rss_mib():.0f} MiB "
            "(includes the emulator's generation of the report in its own process: not counted). "
            "Targets: total under 20 s, peak RSS under 1.5 GiB.",
        )
        print(text)
    finally:
        local_stack.down()
