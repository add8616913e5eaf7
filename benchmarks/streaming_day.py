"""Memory that does not grow with the day: one SSP-day at 1M and 10M rows, each in a
process of its own, so its peak RSS is that day's alone.

Each size runs the same steps the daily tasks run: fetch (parts spooled to a
file) and land raw, then read the landed body back from S3 a record batch at a
time to validate it, then again to publish it (part files written locally,
uploaded in multipart chunks). For comparison the 1M-row day also runs through
the whole-day path (the body parsed whole, validated and published as one
table), as every day ran before. The emulator generates each report once
before the measured run (its generation is its own process and is not
counted); the measured fetch downloads the cached report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess  # nosec B404: runs this module as a child process
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_table
from benchmarks.session import SSP, bench_settings, post

DAY = dt.date(2026, 10, 1)
LOCAL = Path(".local") / "bench-streaming"
SIZES = tuple(int(n) for n in os.environ.get("STREAMING_SIZES", "1000000,10000000").split(","))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(state: dict[str, Any], mode: str, day: dt.date) -> dict[str, Any]:
    """One measured SSP-day in this process (run as ``python -m benchmarks.streaming_day``)."""
    from ssp_revenue.core import registry
    from ssp_revenue.core.clock import FixedClock
    from ssp_revenue.ingest.connectors import RetryPolicy, build_connector, connector_class
    from ssp_revenue.ingest.credentials import emulator_credentials
    from ssp_revenue.ingest.validate import validate, validate_batches
    from ssp_revenue.lake import publish, store
    from ssp_revenue.operate import runtime

    settings = bench_settings(state)
    at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)
    services = runtime.services_for(settings, clock=FixedClock(at))
    config = registry.find(registry.load_registry(settings.config_dir / "ssps.yaml"), SSP)
    style = connector_class(config.style)
    connector = build_connector(config, emulator_credentials(SSP, state["emulator_url"]), settings,
                                services.clock, retry=RetryPolicy(attempts=3))
    import great_expectations  # noqa: F401  (imports counted in the baseline, as a worker has them)

    generating: list[float] = []  # the emulator generating the report: its time, not ours
    send = connector.session.request

    def timed_request(method: str, url: str, **kwargs: Any) -> Any:
        response = send(method, url, **kwargs)
        if method == "POST" and url.endswith("/v1/reports"):
            generating.append(response.elapsed.total_seconds())
        return response

    connector.session.request = timed_request  # type: ignore[method-assign]
    phases: dict[str, float] = {}
    out: dict[str, Any] = {"imports_mib": _rss_mib()}
    started = time.perf_counter()
    report = connector.fetch(day)
    landed = store.land_raw(services.s3, settings.bucket, ssp=SSP, revenue_date=day, body=report.body,
                           extension=report.extension, facts=report.facts)
    phases["fetch + land"] = time.perf_counter() - started - sum(generating)
    out["generation_s"] = sum(generating)
    out["fetch_mib"] = _rss_mib()

    def opener() -> Any:
        return store.open_raw(services.s3, settings.bucket, landed.key)

    started = time.perf_counter()
    if mode == "stream":
        checked = validate_batches(style.read_batches(config, opener, report.facts, day), config=config,
                                   revenue_date=day, file=landed.key,
                                   again=lambda: style.read_batches(config, opener, report.facts, day))
        version = checked.digest[:publish.VERSION_CHARS]
        phases["read + validate"] = time.perf_counter() - started
        out["validate_mib"] = _rss_mib()
        started = time.perf_counter()
        result = publish.publish_batches(
            style.read_batches(config, opener, report.facts, day).batches, ssp=SSP, revenue_date=day,
            fetched_at=at, raw_object=landed.key, version=version, rows=checked.totals.rows,
            s3=services.s3, catalog=services.catalog, clock=services.clock)
    else:
        parsed = style.parse(config, store.read_raw(services.s3, settings.bucket, landed.key)[0],
                             report.facts, day)
        checked = validate(parsed, config=config, revenue_date=day, file=landed.key)
        phases["read + validate"] = time.perf_counter() - started
        started = time.perf_counter()
        result = publish.publish_batch(parsed.table, ssp=SSP, revenue_date=day, fetched_at=at,
                                       raw_object=landed.key, expected_version=None, s3=services.s3,
                                       catalog=services.catalog, clock=services.clock)
    phases["publish"] = time.perf_counter() - started
    prefix = store.version_prefix(publish.TABLE, SSP, day, result.version)
    out.update(phases=phases, peak_mib=_rss_mib(), rows=checked.totals.rows, version=result.version,
               files=len(store.parquet_keys(services.s3, settings.bucket, prefix)),
               bytes=sum(o["Size"] for o in store.list_objects(services.s3, settings.bucket, prefix)))
    return out


def _measure(state: dict[str, Any], mode: str, day: dt.date) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(  # nosec B603: this interpreter, this module
        [sys.executable, "-m", "benchmarks.streaming_day", json.dumps(state), mode, day.isoformat()],
        check=True, capture_output=True, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> str:
    from ssp_revenue.operate import stack

    local_stack = stack.LocalStack(LOCAL)
    state = local_stack.up()
    os.environ.update(stack.LOCAL_AWS_ENV)
    try:
        from ssp_revenue.operate import runtime

        settings = bench_settings(state)
        services = runtime.services_for(settings)
        runtime.bootstrap(services)
        at = dt.datetime.combine(DAY + dt.timedelta(days=8), dt.time(12), tzinfo=dt.UTC)
        post(state["emulator_url"] + "/_control/clock", {"now": at.isoformat()})  # every day served
        measured: list[tuple[int, str, dict[str, Any]]] = []
        for rows in SIZES:
            post(state["emulator_url"] + "/_control/profile",
                 {"ssp": SSP, "rows": rows, "part_size": 8 * 1024 * 1024})
            for mode in (("whole", "stream") if rows == SIZES[0] else ("stream",)):
                day = DAY + dt.timedelta(days=len(measured))
                measured.append((rows, mode, _measure(state, mode, day)))
    finally:
        local_stack.down()
    table = []
    for rows, mode, result in measured:
        phases = result["phases"]
        total = sum(phases.values())
        table.append([
            f"{rows:,}", "whole day (before)" if mode == "whole" else "streamed",
            f"{result['peak_mib']:.0f}", f"{result['imports_mib']:.0f}",
            f"{phases['fetch + land']:.2f}", f"{phases['read + validate']:.2f}", f"{phases['publish']:.2f}",
            f"{total:.2f}", f"{total / rows * 1e6:.2f}",
            f"{result['files']} ({result['bytes'] / 2**20:.0f} MiB)",
        ])
    notes = (
        "Peak RSS: the measuring process's maximum resident set (imports included: great-expectations, "
        "pyarrow, boto3, pandas), one process per row; the emulator generates the report in its own "
        "process, before the measured fetch. s per 1M rows: the steps' total over the rows. "
        "Emulator generation excluded: "
        + ", ".join(f"{r['generation_s']:.1f} s at {n:,}" for n, _, r in measured) + ". "
        "Reproduce: `make bench ARGS='--only streaming'`."
    )
    return write_table(
        "streaming_day", "One SSP-day streamed: peak memory and time at 1M and 10M rows",
        ["rows", "path", "peak RSS MiB", "after imports MiB", "fetch + land s", "read + validate s",
         "publish s", "total s", "s per 1M rows", "files"],
        table, notes)


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]), sys.argv[2], dt.date.fromisoformat(sys.argv[3]))))
