"""The lake over a simulated span: objects and bytes per prefix and per table, before and
after compaction and vacuum, against the unique content, and the files an Athena query
over a month of publish_log opens.

The span is replayed through ``ssp_revenue.operate.replay`` (what ``ssp-revenue replay`` runs:
every daily, chance and close run of the schedule, in order, on the emulator's clock),
five SSPs by default (``--growth-ssps`` picks fewer: every table is partitioned by SSP,
so one SSP's year is a fifth of the lake at a fifth of the time), small reports, the
emulator's restatement curves, production windows (refetch 7 days, adjustments 45, 3 fetch
chances). ``--growth-days`` sets the span (365: a year).

Usage: ``python -m benchmarks.lake_growth [DAYS] [ROWS] [SSP,SSP...]`` or ``make bench
ARGS="--only growth --growth-days 365 --growth-ssps adpulse"``. The replay costs about 0.3 s per
fetch on two cores, and a five-SSP year is ~87,000 fetches (5-9 h), one SSP's ~17,500: it runs
in chunks of ``CHUNK_DAYS``, the lake saved after each (``lake_checkpoint``), and the same
command run again goes on from the last chunk.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import shutil
import subprocess  # nosec B404
import sys
import time
from typing import Any

from benchmarks import lake_checkpoint
from benchmarks.common import write_table
from benchmarks.session import LOCAL, post
from ssp_revenue.core import calendar, registry, schema
from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.connectors import RetryPolicy
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.lake import logs, store
from ssp_revenue.operate import maintenance, replay, runtime, stack

SSPS = ("adpulse", "xchange", "gamnet", "nihon", "dropzone")
GO_LIVE = dt.date(2026, 1, 1)
_TABLE = re.compile(r"^tables/([a-z_]+)/")


def census(s3: Any, bucket: str) -> dict[str, tuple[int, int]]:
    """(objects, bytes) per top-level prefix, tables split per table."""
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            match = _TABLE.match(key)
            name = f"tables/{match[1]}" if match else key.split("/", 1)[0]
            out[name][0] += 1
            out[name][1] += int(obj["Size"])
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def month_files(s3: Any, catalog: Any, table: str, month: tuple[int, int]) -> int:
    """Files Athena opens for ``SELECT ... FROM table WHERE revenue_date IN month``."""
    count = 0
    for part in catalog.partitions(table):
        day = dt.date.fromisoformat(part.revenue_date)
        if (day.year, day.month) == month:
            count += len(store.parquet_keys(s3, catalog.bucket, store.split_uri(part.location)[1]))
    return count


def floor(s3: Any, catalog: Any) -> dict[str, int]:
    """The unique content of the revenue table: its live versions' bytes."""
    sizes = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=catalog.bucket, Prefix="tables/revenue/"):
        sizes.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
    live = {store.split_uri(p.location)[1] for p in catalog.partitions("revenue")}
    return {"tables/revenue (live versions)": sum(v for k, v in sizes.items()
                                                  if k.rsplit("/", 1)[0] + "/" in live)}


CHECKPOINT = LOCAL / "growth-checkpoint"
CHUNK_DAYS = int(os.environ.get("GROWTH_CHUNK_DAYS", "10"))


def main(days: int, rows: int, ssps: tuple[str, ...] = SSPS) -> str:
    """Replay ``days`` in chunks, saving the lake after each, then measure it.

    The machine ends its processes (moto's lake with them) after a few hours, and a year
    takes longer: a rerun with the same span and rows goes on from the last saved chunk
    (``lake_checkpoint``). A different span or row count starts over.
    """
    local_stack = stack.LocalStack(LOCAL / "growth")
    local_stack.down()  # a lake is only ever the checkpoint's: never half a chunk
    state = local_stack.up()
    os.environ.update(stack.LOCAL_AWS_ENV)
    try:
        return _measure(state, days, rows, ssps)
    finally:
        local_stack.down()


def _progress(days: int, rows: int, ssps: tuple[str, ...]) -> dict[str, Any]:
    path = CHECKPOINT / "progress.json"
    if path.exists():
        saved: dict[str, Any] = json.loads(path.read_text())
        if (saved["days"], saved["rows"], saved.get("ssps", list(SSPS))) == (days, rows, list(ssps)):
            return saved
    shutil.rmtree(CHECKPOINT, ignore_errors=True)
    CHECKPOINT.mkdir(parents=True)
    return {"days": days, "rows": rows, "ssps": list(ssps), "done": 0, "runs": {}, "fetches": 0, "opened": {},
            "resolved": 0, "replay_s": 0.0, "chunks": []}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,  # nosec
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _measure(state: dict[str, Any], days: int, rows: int, names: tuple[str, ...]) -> str:
    settings = Settings(bucket="growth", glue_database="growth", region=state["region"],
                        aws_endpoint=state["s3_endpoint"], emulator_url=state["emulator_url"],
                        clock="replay", start_date=GO_LIVE, refetch_days=7, adjustment_days=45,
                        fetch_chances=3)
    services = runtime.services_for(settings)
    progress = _progress(days, rows, names)
    if progress["done"]:
        restored = lake_checkpoint.restore(services.s3, services.catalog.glue, CHECKPOINT, settings.region)
        post(state["emulator_url"] + "/_control/clock", {"now": progress["clock"]})
        print(f"growth: restored day {progress['done']} of {days}: {restored}", flush=True)
    runtime.bootstrap(services)
    ssps = [registry.find(registry.load_registry(settings.config_dir / "ssps.yaml"), n) for n in names]
    for name in names:
        post(state["emulator_url"] + "/_control/profile", {"ssp": name, "rows": rows})

    def connector(config: registry.SspConfig) -> Any:
        return runtime.connector(
            config, emulator_credentials(config.name, settings.emulator_url, settings.aws_endpoint),
            services, retry=RetryPolicy(attempts=3, initial=0.01, jitter=0.01,
                              sleep=lambda s: time.sleep(min(s, 0.02))))

    start = calendar.date_start(GO_LIVE, settings.tz)
    end = start + dt.timedelta(days=days)
    while progress["done"] < days:
        first = start + dt.timedelta(days=progress["done"])
        last = min(end, first + dt.timedelta(days=CHUNK_DAYS))
        post(state["emulator_url"] + "/_control/clock",
             {"now": max(first, services.clock.now()).isoformat()})
        started = time.perf_counter()
        chunk = replay.replay(first, last, services=services, ssps=ssps, connectors=connector)
        took = time.perf_counter() - started
        progress["done"] = (last - start).days
        progress["runs"] = dict(collections.Counter(progress["runs"]) + chunk.runs)
        progress["fetches"] += chunk.fetches
        progress["opened"] = dict(collections.Counter(progress["opened"])
                                  + collections.Counter(n["reason"] for n in chunk.opened))
        progress["resolved"] += len(chunk.resolved)
        progress["replay_s"] += took
        progress["clock"] = services.clock.now().isoformat()
        saved = lake_checkpoint.save(services.s3, services.catalog.glue, CHECKPOINT)
        progress["chunks"].append({"through_day": progress["done"], "replay_s": round(took, 1),
                                   "fetches": chunk.fetches, "commit": _commit(), **saved})
        tmp = CHECKPOINT / "progress.tmp"
        tmp.write_text(json.dumps(progress, indent=1))
        os.replace(tmp, CHECKPOINT / "progress.json")
        print(f"growth: day {progress['done']} of {days}: {chunk.fetches} fetches in {took:,.0f} s; "
              f"saved {saved}", flush=True)
    replay_s = progress["replay_s"]
    summary = (f"{sum(progress['runs'].values())} runs ({dict(sorted(progress['runs'].items()))}), "
               f"{progress['fetches']} fetches, {sum(progress['opened'].values())} incidents opened "
               f"{progress['opened']}, {progress['resolved']} resolved")
    commits = sorted({c["commit"] for c in progress["chunks"]})
    s3, catalog = services.s3, services.catalog
    now = services.clock.now()
    month = ((GO_LIVE + dt.timedelta(days=max(0, days - 75))).year,
             (GO_LIVE + dt.timedelta(days=max(0, days - 75))).month)  # a closed month

    before = census(s3, catalog.bucket)
    files_before = {t: month_files(s3, catalog, t, month) for t in logs.COMPACTABLE}
    fetched = _fetch_bytes(services)
    per_fetch_raw = sum(fetched)
    started = time.perf_counter()
    compacted = maintenance.compact(s3, catalog, settings, now)
    compact_s = time.perf_counter() - started
    started = time.perf_counter()
    vacuumed = maintenance.vacuum_lake(s3, catalog, settings, now, apply=True)
    vacuum_s = time.perf_counter() - started
    after = census(s3, catalog.bucket)
    files_after = {t: month_files(s3, catalog, t, month) for t in logs.COMPACTABLE}
    unique = floor(s3, catalog)

    rows_out = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name, (0, 0)), after.get(name, (0, 0))
        rows_out.append([name, f"{b[0]:,}", f"{b[1]:,}", f"{a[0]:,}", f"{a[1]:,}"])
    total_b = [sum(v[0] for v in before.values()), sum(v[1] for v in before.values())]
    total_a = [sum(v[0] for v in after.values()), sum(v[1] for v in after.values())]
    rows_out.append(["**all**", f"{total_b[0]:,}", f"{total_b[1]:,}", f"{total_a[0]:,}", f"{total_a[1]:,}"])
    rows_out.append(["raw/ had every fetch kept its body (the old layout)", f"{len(fetched):,}",
                     f"{per_fetch_raw:,}", "", ""])
    for name, value in unique.items():
        rows_out.append([f"floor: {name}", "", "", "", f"{value:,}"])
    for table in logs.COMPACTABLE:
        rows_out.append([f"files a query over {month[0]}-{month[1]:02d} of {table} opens",
                         f"{files_before[table]:,}", "", f"{files_after[table]:,}", ""])
    notes = (
        f"{days} days x {len(names)} SSP(s) ({', '.join(names)}), {rows} emulator rows per SSP-day, "
        f"replayed: "
        f"{summary}; replay {replay_s:,.0f} s in {len(progress['chunks'])} chunks of "
        f"{CHUNK_DAYS} days (the lake saved after each; code {', '.join(commits)}), "
        f"compaction {compact_s:,.1f} s "
        f"({len(compacted)} partitions), vacuum {vacuum_s:,.1f} s ({len(vacuumed.doomed)} prefixes, "
        f"{vacuumed.bytes:,} bytes). 'After' is right after one compaction of the closed dates "
        f"(before {maintenance.closed_before(settings, now)}) and one vacuum with the 7-day reader "
        "grace, at the span's end: the open 45-day window keeps its small files and its versions "
        "superseded within the grace until later runs of the upkeep DAGs.")
    return write_table("lake_growth", f"The lake after {days} simulated days: objects and bytes",
                       ["prefix / table", "objects before", "bytes before", "objects after", "bytes after"],
                       rows_out, notes)


def _fetch_bytes(services: Any) -> list[int]:
    """Every fetch's body size, from fetch_log (what per-fetch raw copies would have stored)."""
    out = []
    for part in services.catalog.partitions("fetch_log"):
        table = logs.read(services.s3, services.catalog, "fetch_log", part.ssp,
                          dt.date.fromisoformat(part.revenue_date), schema.FETCH_LOG)
        out.extend(int(b) for b in table["bytes"].to_pylist())
    return out


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 365,
               int(sys.argv[2]) if len(sys.argv) > 2 else 200,
               tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else SSPS))
