"""kill -9 at every step boundary of publishing and freezing: a rerun converges to a clean run.

For each crash point: a clean run of the two phases (publish before the cutoff,
then refetch + freeze + allocate after it) is recorded; the lake is wiped; the
same phases run again in a child process that SIGKILLs itself at the point, a
reader checks what a query would see right after the crash, and a rerun in this
process finishes. Every object (key and bytes) and every Glue partition
(location and parameters) must then equal the clean run's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import signal
import subprocess  # nosec B404: the process under test
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from ssp_revenue.core import calendar, registry
from ssp_revenue.lake.catalog import TABLES
from ssp_revenue.operate.pipeline import run_ssp
from tests.integration.conftest import Lake
from tests.reliability.crash_child import POINTS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SSP = "adpulse"
DAY = dt.date(2026, 11, 5)


def phases(env: Lake) -> list[dt.datetime]:
    cut = calendar.cutoff(DAY, env.settings.tz, env.settings.freeze_hours)
    return [cut - dt.timedelta(hours=30), cut + dt.timedelta(hours=2)]


def snapshot(env: Lake) -> dict[str, Any]:
    s3, glue, bucket = env.services.s3, env.services.catalog.glue, env.settings.bucket
    objects = {}
    for key in env.keys(""):
        if key.startswith("tables/pipeline_events/"):
            continue
        if key.startswith("tables/fetch_log/"):
            # One row per fetch, named by its instant and body: the same keys, but a fetch
            # repeated after a kill records its own facts (a new report job id) and that
            # the body was already stored.
            objects[key] = "a fetch"
            continue
        objects[key] = hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
    partitions = {}
    for table in TABLES:
        for part in env.services.catalog.partitions(table):
            partitions[(table, part.revenue_date, part.ssp)] = (part.location, part.parameters)
    del glue
    return {"objects": objects, "partitions": partitions}


def wipe(env: Lake) -> None:
    s3, bucket = env.services.s3, env.settings.bucket
    for key in env.keys(""):
        s3.delete_object(Bucket=bucket, Key=key)
    glue = env.services.catalog.glue
    for table in TABLES:
        for part in env.services.catalog.partitions(table):
            glue.delete_partition(DatabaseName=env.settings.glue_database, TableName=table,
                                  PartitionValues=[part.revenue_date, part.ssp])


def run_here(env: Lake, emulator: Any, at: dt.datetime) -> None:
    emulator.set_clock(at)
    run_ssp(registry.find(env.registry, SSP), [DAY], env.connector(ssp=SSP), env.services)


def run_child(env: Lake, emulator: Any, at: dt.datetime, point: str | None) -> int:
    emulator.set_clock(at)
    spec = {"bucket": env.settings.bucket, "database": env.settings.glue_database,
            "region": env.settings.region, "endpoint": env.settings.aws_endpoint,
            "emulator_url": env.settings.emulator_url, "ssp": SSP, "date": DAY.isoformat(), "point": point}
    done = subprocess.run(  # nosec B603: this interpreter, a module of the test suite
        [sys.executable, "-m", "tests.reliability.crash_child", json.dumps(spec)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'include'}:{ROOT / 'plugins'}"},
        capture_output=True, text=True, timeout=300,
    )
    return done.returncode


def readers_see_a_complete_version(env: Lake) -> None:
    """What Athena would read right after the crash: nothing yet, or one whole verified version."""
    for table in ("revenue", "revenue_final", "allocation_final"):
        for part in env.services.catalog.partitions(table):
            bucket, _, prefix = part.location.removeprefix("s3://").partition("/")
            keys = env.keys(prefix)
            assert keys, f"{table} partition points at nothing: {part.location}"
            rows = sum(pq.read_metadata(io.BytesIO(env.services.s3.get_object(
                Bucket=bucket, Key=k)["Body"].read())).num_rows for k in keys)
            if "row_count" in part.parameters:
                assert rows == int(part.parameters["row_count"]), (table, part)


@pytest.mark.parametrize("point", sorted(POINTS))
def test_a_kill_at_a_step_boundary_converges_to_the_clean_run(
    lake_env: Lake, emulator: Any, point: str
) -> None:
    env = lake_env
    first, second = phases(env)
    for at in (first, second):
        run_here(env, emulator, at)
    clean = snapshot(env)
    assert any(k.startswith("ledger/finalized/") for k in clean["objects"])
    assert ("allocation_final", DAY.isoformat(), SSP) in clean["partitions"]
    wipe(env)

    freezing = POINTS[point][2] not in ("raw/", "tables/revenue/", "revenue")
    if freezing:
        run_here(env, emulator, first)
    code = run_child(env, emulator, second if freezing else first, point)
    assert code == -signal.SIGKILL, f"the child did not reach {point} (exit {code})"
    readers_see_a_complete_version(env)

    run_here(env, emulator, second if freezing else first)
    if not freezing:
        run_here(env, emulator, second)
    after = snapshot(env)
    assert after["partitions"] == clean["partitions"]
    missing = set(clean["objects"]) - set(after["objects"])
    extra = set(after["objects"]) - set(clean["objects"])
    changed = {k for k in set(clean["objects"]) & set(after["objects"])
               if clean["objects"][k] != after["objects"][k]}
    assert (missing, extra, changed) == (set(), set(), set())
