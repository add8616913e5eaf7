"""One SSP-day at the finest grain: fetch (gzip CSV over HTTP) -> land raw -> parse ->
validate -> publish -> catalog switch, on the local stack; median of N runs, peak RSS."""

from __future__ import annotations

import datetime as dt

from benchmarks.common import RESULTS, median, peak_rss_mib, timed, write_table
from benchmarks.session import SSP, Session
from ssp_revenue.ingest.connectors import connector_class
from ssp_revenue.ingest.validate import validate
from ssp_revenue.lake import store
from ssp_revenue.lake.publish import publish_batch


def main(session: Session, runs: int, profile: bool = True) -> str:
    phases: dict[str, list[float]] = {}
    for run in range(runs):
        one_day(session, dt.date(2026, 10, 1) + dt.timedelta(days=run), phases)
    if profile:
        # One more day under pyinstrument: where the time goes, call by call.
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        with profiler:
            one_day(session, dt.date(2026, 10, 1) + dt.timedelta(days=runs), {})
        (RESULTS / "pipeline_day_profile.txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False))
    table = [[name, f"{median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}"]
             for name, values in phases.items()]
    return write_table(
        "pipeline_day",
        f"One SSP-day, {session.rows:,} rows: fetch -> publish (median of {runs})",
        ["phase", "median s", "min s", "max s"],
        table,
        f"Peak RSS of the benchmark process: {peak_rss_mib():.0f} MiB "
        "(the emulator generates the report in its own process: not counted). "
        "Targets: total under 20 s, peak RSS under 1.5 GiB. "
        "Profile of one more day: pipeline_day_profile.txt (pyinstrument).",
    )


def one_day(session: Session, day: dt.date, phases: dict[str, list[float]]) -> None:
    services, settings, config = session.services, session.settings, session.config
    connector = session.connector(day)
    at = session.at(day)
    with timed(phases, "total"):
        with timed(phases, "fetch (HTTP, gzip CSV)"):
            report = connector.fetch(day)
        with timed(phases, "land raw"):
            key = store.land_raw(services.s3, settings.bucket, ssp=SSP, revenue_date=day,
                                body=report.body, extension=report.extension,
                                facts=report.facts).key
        with timed(phases, "parse + normalise"):
            parsed = connector_class(config.style).parse(config, report.body, report.facts, day)
        with timed(phases, "validate (GX + exact totals)"):
            validate(parsed, config=config, revenue_date=day, file=key)
        with timed(phases, "publish (hash, write, verify, switch, log)"):
            publish_batch(parsed.table, ssp=SSP, revenue_date=day, fetched_at=at,
                          raw_object=key, expected_version=None, s3=services.s3,
                          catalog=services.catalog, clock=services.clock)
