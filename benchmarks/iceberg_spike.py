"""The table-format spike: the ``revenue`` table as Apache Iceberg (PyIceberg through the
Glue catalog on the same moto endpoint), against today's Hive partitions switched in Glue.

Run by hand: ``make bench-iceberg`` (PyIceberg is not in the lock: it builds
``.venv-iceberg`` from the lock plus ``benchmarks/requirements-iceberg.txt``).
Measures, on one session:

* the 1M-row publish of one (date, SSP): ours vs ``Table.overwrite`` with a partition filter;
* 5 SSP task processes committing their own (date, SSP) at once: conflicts, retries, failures;
* commit latency and metadata size as snapshots accumulate (a year is ~84,000 commits);
* an unchanged report: what Iceberg writes for it, and what finding the partition's
  current content costs;
* DuckDB reading a snapshot through PyIceberg's scan;
* a reader loop during overwrites (never empty, never mixed) and SIGKILLed commits
  (the table stays valid; what they leave behind).
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import threading
import time
from typing import Any

import pyarrow as pa

from benchmarks.common import median, write_table
from benchmarks.session import Session, open_session
from ssp_revenue.core import schema
from ssp_revenue.lake import store
from ssp_revenue.lake.publish import publish_batch
from ssp_revenue.operate import stack

NAMESPACE = "iceberg_spike"
SSPS = ("adpulse", "xchange", "gamnet", "nihon", "dropzone")


def catalog_properties(endpoint: str, region: str) -> dict[str, str]:
    return {
        "type": "glue", "glue.endpoint": endpoint, "glue.region": region,
        "glue.access-key-id": stack.LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        "glue.secret-access-key": stack.LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "s3.endpoint": endpoint, "s3.region": region,
        "s3.access-key-id": stack.LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        "s3.secret-access-key": stack.LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


def load(props: dict[str, str]) -> Any:
    from pyiceberg.catalog import load_catalog

    return load_catalog("spike", **props)


def create_revenue(props: dict[str, str], bucket: str, name: str) -> Any:
    catalog = load(props)
    if NAMESPACE not in {n[0] for n in catalog.list_namespaces()}:
        catalog.create_namespace(NAMESPACE)
    identifier = f"{NAMESPACE}.{name}"
    if catalog.table_exists(identifier):
        catalog.drop_table(identifier)
    table = catalog.create_table(identifier, schema=schema.REVENUE, location=f"s3://{bucket}/iceberg/{name}",
                                 properties={"commit.retry.num-retries": "10"})
    with table.update_spec() as spec:
        spec.add_identity("revenue_date")
        spec.add_identity("ssp")
    return table.refresh()


def partition_filter(day: dt.date, ssp: str) -> Any:
    from pyiceberg.expressions import And, EqualTo

    return And(EqualTo("revenue_date", day.isoformat()), EqualTo("ssp", ssp))


def batch_for(table: pa.Table, day: dt.date, ssp: str, bump: int = 0) -> pa.Table:
    n = table.num_rows
    out = table.set_column(0, "revenue_date", pa.repeat(pa.scalar(day), n))
    out = out.set_column(1, "ssp", pa.repeat(pa.scalar(ssp), n))
    if bump:
        index = out.schema.get_field_index("impressions")
        out = out.set_column(index, "impressions",
                             pa.array([v + bump for v in out["impressions"].to_pylist()], pa.int64()))
    return out.cast(schema.REVENUE)


def lineaged(content: pa.Table, day: dt.date) -> pa.Table:
    n = content.num_rows
    at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
    return content.append_column("source_version", pa.repeat(pa.scalar("spike"), n)) \
        .append_column("fetched_at", pa.repeat(pa.scalar(at, pa.timestamp("us", tz="UTC")), n)) \
        .append_column("raw_object", pa.repeat(pa.scalar("s3://bench/raw/spike"), n)).cast(schema.REVENUE)


class RetryCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1


def _writer(props: dict[str, str], identifier: str, ssp: str, day: dt.date, rows: pa.Table,
            rounds: int, barrier: Any, out: Any) -> None:
    counter = RetryCounter()
    logging.getLogger("pyiceberg").addHandler(counter)
    logging.getLogger("pyiceberg").setLevel(logging.INFO)
    table = load(props).load_table(identifier)
    latencies, failures = [], 0
    for round_ in range(rounds):
        barrier.wait()
        started = time.perf_counter()
        try:
            table.overwrite(batch_for(rows, day + dt.timedelta(days=round_), ssp),
                            overwrite_filter=partition_filter(day + dt.timedelta(days=round_), ssp))
        except Exception:
            failures += 1
        latencies.append(time.perf_counter() - started)
    out.put({"ssp": ssp, "retries": counter.retries, "failures": failures, "latencies": latencies})


def concurrent_commits(props: dict[str, str], bucket: str, small: pa.Table, rounds: int) -> dict[str, Any]:
    table = create_revenue(props, bucket, "revenue_concurrent")
    identifier = f"{NAMESPACE}.revenue_concurrent"
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(len(SSPS)), ctx.Queue()
    day = dt.date(2026, 9, 1)
    workers = [ctx.Process(target=_writer, args=(props, identifier, s, day, small, rounds, barrier, out))
               for s in SSPS]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    table = table.refresh()
    latencies = [x for r in results for x in r["latencies"]]
    return {"commits": len(latencies), "retries": sum(r["retries"] for r in results),
            "failures": sum(r["failures"] for r in results),
            "p50": statistics.median(latencies), "max": max(latencies),
            "snapshots": len(table.metadata.snapshots),
            "rows": table.scan().to_arrow().num_rows, "expected_rows": small.num_rows * len(SSPS) * rounds}


def metadata_growth(props: dict[str, str], bucket: str, small: pa.Table, commits: int) -> dict[str, Any]:
    table = create_revenue(props, bucket, "revenue_growth")
    day = dt.date(2026, 9, 1)
    latencies = []
    for i in range(commits):
        d = day + dt.timedelta(days=i % 45)  # the refetch window: each date overwritten again and again
        started = time.perf_counter()
        table.overwrite(batch_for(small, d, "adpulse", bump=i),
                        overwrite_filter=partition_filter(d, "adpulse"))
        latencies.append(time.perf_counter() - started)
    location = table.metadata_location
    s3 = table.io
    size = len(s3.new_input(location).open().read())
    started = time.perf_counter()
    with table.maintenance.expire_snapshots() as expire:
        for snapshot in table.metadata.snapshots[:-1]:
            expire.by_id(snapshot.snapshot_id)
    expire_s = time.perf_counter() - started
    table = table.refresh()
    return {"commits": commits, "first20": median(latencies[:20]), "last20": median(latencies[-20:]),
            "metadata_bytes": size, "snapshots_after_expire": len(table.metadata.snapshots),
            "expire_s": expire_s}


def unchanged(props: dict[str, str], bucket: str, small: pa.Table, s3: Any) -> dict[str, Any]:
    table = create_revenue(props, bucket, "revenue_unchanged")
    day = dt.date(2026, 9, 1)
    batch = batch_for(small, day, "adpulse")
    table.overwrite(batch, overwrite_filter=partition_filter(day, "adpulse"))
    before = len(store.list_keys(s3, bucket, "iceberg/revenue_unchanged/"))
    snaps = len(table.metadata.snapshots)
    table.overwrite(batch, overwrite_filter=partition_filter(day, "adpulse"))
    after = len(store.list_keys(s3, bucket, "iceberg/revenue_unchanged/"))
    started = time.perf_counter()
    files = table.inspect.files()
    lookup = time.perf_counter() - started
    return {"new_snapshots": len(table.metadata.snapshots) - snaps, "new_objects": after - before,
            "files_lookup_s": lookup, "files_rows": files.num_rows}


def reader_loop(props: dict[str, str], bucket: str, small: pa.Table, overwrites: int) -> dict[str, Any]:
    table = create_revenue(props, bucket, "revenue_readers")
    day = dt.date(2026, 9, 1)
    a, b = batch_for(small, day, "adpulse"), batch_for(small.slice(0, small.num_rows // 2), day, "adpulse")
    table.overwrite(a, overwrite_filter=partition_filter(day, "adpulse"))
    seen: dict[int, int] = {}
    stop = threading.Event()

    def read() -> None:
        reader = load(props).load_table(f"{NAMESPACE}.revenue_readers")
        while not stop.is_set():
            n = reader.refresh().scan(row_filter=partition_filter(day, "adpulse")).to_arrow().num_rows
            seen[n] = seen.get(n, 0) + 1

    thread = threading.Thread(target=read)
    thread.start()
    for i in range(overwrites):
        table.overwrite(b if i % 2 == 0 else a, overwrite_filter=partition_filter(day, "adpulse"))
    stop.set()
    thread.join()
    bad = sum(c for n, c in seen.items() if n not in (a.num_rows, b.num_rows))
    return {"reads": sum(seen.values()), "bad_reads": bad}


def _overwrite_once(props: dict[str, str], identifier: str, batch: pa.Table, day: dt.date) -> None:
    load(props).load_table(identifier).overwrite(batch, overwrite_filter=partition_filter(day, "adpulse"))


def crash_points(props: dict[str, str], bucket: str, batch: pa.Table, s3: Any, kills: int) -> dict[str, Any]:
    table = create_revenue(props, bucket, "revenue_crash")
    identifier = f"{NAMESPACE}.revenue_crash"
    day = dt.date(2026, 9, 1)
    batch = batch_for(batch, day, "adpulse")
    table.overwrite(batch, overwrite_filter=partition_filter(day, "adpulse"))
    started = time.perf_counter()
    _overwrite_once(props, identifier, batch, day)
    duration = time.perf_counter() - started
    ctx = mp.get_context("fork")
    valid = 0
    rng = random.Random(7)
    for _ in range(kills):
        child = ctx.Process(target=_overwrite_once, args=(props, identifier, batch, day))
        child.start()
        time.sleep(rng.uniform(0.0, duration * 1.5))
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join()
        rows = load(props).load_table(identifier).scan(row_filter=partition_filter(day, "adpulse")).to_arrow()
        valid += rows.num_rows == batch.num_rows
    table = table.refresh()
    live = {f.file.file_path for task in [table.scan()] for f in task.plan_files()}
    data = [k for k in store.list_keys(s3, bucket, "iceberg/revenue_crash/data/") if k.endswith(".parquet")]
    orphans = [k for k in data if f"s3://{bucket}/{k}" not in live]
    return {"kills": kills, "valid_after": valid, "data_files": len(data), "orphans": len(orphans),
            "commit_s": duration}


def main(session: Session, runs: int) -> str:
    props = catalog_properties(session.settings.aws_endpoint or "", session.settings.region)
    bucket, s3 = session.settings.bucket, session.services.s3
    day = dt.date(2026, 9, 2)
    big = lineaged(session.fetch_parsed(day).table.cast(schema.NORMALISED), day)
    small = big.slice(0, 1000)
    iceberg = create_revenue(props, bucket, "revenue")
    timings: dict[str, list[float]] = {"ours (Hive version + Glue switch)": [], "iceberg overwrite": []}
    for run in range(runs + 1):
        d = day + dt.timedelta(days=run)
        content = batch_for(big, d, "adpulse")
        started = time.perf_counter()
        publish_batch(content.select(list(schema.NORMALISED.names)), ssp="adpulse", revenue_date=d,
                      fetched_at=session.at(d), raw_object="raw/bench", expected_version=None, s3=s3,
                      catalog=session.services.catalog, clock=session.services.clock)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        iceberg.overwrite(content, overwrite_filter=partition_filter(d, "adpulse"))
        theirs = time.perf_counter() - started
        if run:
            timings["ours (Hive version + Glue switch)"].append(ours)
            timings["iceberg overwrite"].append(theirs)
    started = time.perf_counter()
    snap = iceberg.refresh().current_snapshot()
    scanned = iceberg.scan(row_filter=partition_filter(day + dt.timedelta(days=1), "adpulse"),
                           snapshot_id=snap.snapshot_id if snap else None).to_duckdb("revenue")
    total = scanned.execute("SELECT count(*), sum(revenue) FROM revenue").fetchone()
    scan_s = time.perf_counter() - started

    concurrent = concurrent_commits(props, bucket, small, rounds=10)
    growth = metadata_growth(props, bucket, small, commits=int(os.environ.get("SPIKE_COMMITS", "300")))
    same = unchanged(props, bucket, small, s3)
    readers = reader_loop(props, bucket, small, overwrites=30)
    crashes = crash_points(props, bucket, small, s3, kills=20)

    rows = [[name, f"{median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}"] for name, v in timings.items()]
    rows += [
        ["DuckDB over a snapshot scan, 1 partition (s)", f"{scan_s:.2f}", "", f"{total[0]:,} rows"],
        ["5 SSP processes x 10 rounds: commits / retries / failures",
         f"{concurrent['commits']} / {concurrent['retries']} / {concurrent['failures']}", "",
         f"p50 {concurrent['p50']:.2f} s, max {concurrent['max']:.2f} s; rows {concurrent['rows']:,} "
         f"of {concurrent['expected_rows']:,}"],
        [f"commit latency, first 20 vs last 20 of {growth['commits']} (s)",
         f"{growth['first20']:.3f} / {growth['last20']:.3f}", "",
         f"metadata.json {growth['metadata_bytes']:,} bytes; expire_snapshots {growth['expire_s']:.2f} s"],
        ["unchanged report: new snapshots / new objects", f"{same['new_snapshots']} / {same['new_objects']}",
         "", f"inspect.files() {same['files_lookup_s']:.3f} s"],
        ["reader loop: reads / empty or mixed", f"{readers['reads']} / {readers['bad_reads']}", "", ""],
        ["SIGKILL during commit: valid after / kills", f"{crashes['valid_after']} / {crashes['kills']}", "",
         f"{crashes['orphans']} orphan data files of {crashes['data_files']}"],
    ]
    return write_table(
        "iceberg_spike",
        f"Table format spike: Iceberg (PyIceberg, Glue catalog) vs Hive switch, {big.num_rows:,} rows, "
        f"same moto endpoint (median of {runs})",
        ["measure", "median / value", "min", "max / note"], rows,
        "Both publish the same lineaged batch to a new (date, SSP) each run. Ours hashes, writes the "
        "version, verifies its footer, switches the Glue partition and appends publish_log; Iceberg "
        "writes a data file, a manifest, a manifest list and a metadata.json, then swaps the Glue "
        "table's metadata pointer (optimistic, retried). Commit retries are counted from PyIceberg's "
        "'retrying' log lines. PyIceberg's expire_snapshots removes snapshots from the metadata "
        "only: it deletes no file, and it has no orphan-file removal.",
    )


if __name__ == "__main__":
    opened, local_stack = open_session(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    try:
        print(main(opened, int(sys.argv[2]) if len(sys.argv) > 2 else 5))
    finally:
        local_stack.down()
