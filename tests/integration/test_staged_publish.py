"""Ingest stages the version it validated; load switches to it without reading the report again.

On the real moto server and the emulator over HTTP. A staged version is invisible
(no partition points to it); load publishes it with the same result as a full
load from raw; staged files that are gone or incomplete by load make it publish
from raw instead, never a partition pointing at missing files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from ssp_revenue.lake import publish, store
from ssp_revenue.operate import pipeline

from .conftest import run_instant

DAY = dt.date(2026, 11, 5)
pytestmark = pytest.mark.integration


def _ingested(env: Any) -> dict[str, Any]:
    job = pipeline.new_job(env.config.name, [DAY])
    return pipeline.ingest_job(job, env.config, env.connector(), env.services)


def _partition(env: Any) -> Any:
    return env.services.catalog.get_partition("revenue", DAY.isoformat(), "adpulse")


def _no_raw_reads(env: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    original = store.open_raw

    def counted(s3: Any, bucket: str, key: str) -> Any:
        reads.append(key)
        return original(s3, bucket, key)

    monkeypatch.setattr(store, "open_raw", counted)
    return reads


def test_ingest_stages_and_load_switches_without_reading_the_report(lake_env: Any, emulator: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.set_clock(run_instant(DAY))
    job = _ingested(lake_env)
    [item] = job["validated"]
    version = item["version"]
    prefix = store.version_prefix("revenue", "adpulse", DAY, version)
    assert item["staged"]["digest"].startswith(version)
    assert lake_env.keys(prefix) == [prefix + publish.PART]
    assert _partition(lake_env) is None  # nothing switched: no reader sees it yet

    reads = _no_raw_reads(lake_env, monkeypatch)
    job = pipeline.load_job(job, lake_env.config, lake_env.services)
    assert reads == []
    [published] = job["published"]
    assert (published["outcome"], published["version"]) == ("published", version)
    part = _partition(lake_env)
    assert part.location == store.s3_uri(lake_env.settings.bucket, prefix)
    assert part.parameters["row_count"] == str(item["totals"]["rows"])
    assert part.parameters["revenue_total"] == str(item["totals"]["revenue"])
    assert part.parameters["report"] == item["report"]
    assert publish.logged(lake_env.services.s3, lake_env.services.catalog, "adpulse", DAY, version)


def test_a_staged_publish_ends_as_a_full_load_from_raw_does(lake_env: Any, emulator: Any) -> None:
    emulator.set_clock(run_instant(DAY))
    staged = _ingested(lake_env)
    unstaged = {**staged, "validated": [{k: v for k, v in i.items() if k != "staged"}
                                        for i in staged["validated"]]}
    pipeline.load_job(staged, lake_env.config, lake_env.services)
    via_staging = _partition(lake_env)
    log = publish.read_publish_log(lake_env.services.s3, lake_env.services.catalog, "adpulse", DAY)

    # The same job loaded from raw on a lake where that version was never live.
    lake_env.services.catalog.glue.delete_partition(
        DatabaseName=lake_env.settings.glue_database, TableName="revenue",
        PartitionValues=[DAY.isoformat(), "adpulse"])
    pipeline.load_job(unstaged, lake_env.config, lake_env.services)
    via_raw = _partition(lake_env)
    assert (via_raw.location, via_raw.parameters) == (via_staging.location, via_staging.parameters)
    again = publish.read_publish_log(lake_env.services.s3, lake_env.services.catalog, "adpulse", DAY)
    columns = ["version", "previous_version", "outcome", "row_count", "impressions", "clicks", "revenue",
               "currency", "raw_object", "location"]
    assert log.num_rows == 1 and again.select(columns).to_pylist() == log.select(columns).to_pylist()


def test_staged_files_gone_by_load_are_published_from_raw(lake_env: Any, emulator: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    emulator.set_clock(run_instant(DAY))
    job = _ingested(lake_env)
    [item] = job["validated"]
    prefix = store.version_prefix("revenue", "adpulse", DAY, item["version"])
    s3, bucket = lake_env.services.s3, lake_env.settings.bucket
    for key in lake_env.keys(prefix):
        s3.delete_object(Bucket=bucket, Key=key)  # vacuumed, or a lost upload

    reads = _no_raw_reads(lake_env, monkeypatch)
    job = pipeline.load_job(job, lake_env.config, lake_env.services)
    assert reads == [item["raw_object"]]
    assert job["published"][0]["outcome"] == "published"
    assert lake_env.keys(prefix) == [prefix + publish.PART]
    assert publish.verify_version(s3, bucket, prefix, digest=item["staged"]["digest"],
                                  rows=item["totals"]["rows"], revenue_date=DAY)


def test_a_report_of_several_batches_is_staged_from_a_second_read(lake_env: Any, emulator: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays one batch: a report of many batches keeps none, staging reads it again."""
    from ssp_revenue.ingest.connectors.base import ReportBatches

    emulator.set_clock(run_instant(DAY))
    original = pipeline.read_landed

    def in_small_batches(*args: Any) -> ReportBatches:
        whole = original(*args)
        return ReportBatches(iter(b for batch in whole.batches for b in pa.Table.from_batches([batch]).to_batches(max_chunksize=7)),
                             whole.stated_totals)

    monkeypatch.setattr(pipeline, "read_landed", in_small_batches)
    reads = _no_raw_reads(lake_env, monkeypatch)
    job = _ingested(lake_env)
    [item] = job["validated"]
    assert len(reads) >= 2 and set(reads) == {item["raw_object"]}  # validated, then staged
    reads.clear()
    job = pipeline.load_job(job, lake_env.config, lake_env.services)
    assert reads == [] and job["published"][0]["outcome"] == "published"
