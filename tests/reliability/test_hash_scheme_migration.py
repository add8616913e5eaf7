"""A lake published under an earlier content hash scheme migrates by itself.

Its live partitions name versions the current scheme would not compute. A
re-fetch of the same report reuses the live validation and publishes nothing;
the same figures in other bytes publish once under the current name, and are
unchanged from then on (README, "Content hash schemes and an existing lake").
The earlier scheme's lake is made by renaming a live version: the figures are
the same, only the version name differs, as after a scheme change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.ingest.connectors.base import ReportBody
from ssp_revenue.ingest.normalise import Totals
from ssp_revenue.lake import publish, store
from ssp_revenue.operate import pipeline
from tests.integration.conftest import Lake, run_instant
from tests.unit.helpers import report_body

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 5)
OLD_VERSION = "0123456789abcdef0123"  # a name the current scheme did not compute


def _columns(order: list[int]) -> dict[str, list[Any]]:
    return {
        "date": [DAY.isoformat()] * len(order), "site": ["news"] * len(order),
        "ad_unit_code": [f"u{i}" for i in order], "country_code": ["JP"] * len(order),
        "device_category": ["mobile"] * len(order), "impressions": [100 + i for i in order],
        "clicks": [i % 5 for i in order], "revenue_micros": [1_000_000 + i for i in order],
        "currency": ["JPY"] * len(order),
    }


def _load(env: Lake, order: list[int], report: str, at: dt.datetime) -> dict[str, Any]:
    """One fetch of the report in ``order``, through validate and publish."""
    config = registry.find(env.registry, "adpulse")
    landed = store.land_raw(env.services.s3, env.settings.bucket, ssp="adpulse", revenue_date=DAY,
                           body=ReportBody.of(report_body(_columns(order))), extension="csv.gz",
                           facts={"style": "async_job"})
    job = pipeline.new_job("adpulse", [DAY])
    job["fetched"] = [{"revenue_date": DAY.isoformat(), "raw_object": landed.key,
                       "fetched_at": at.isoformat(), "report": report, "facts": {"style": "async_job"}}]
    pipeline.validate_step(job, config, env.services)
    pipeline.publish_step(job, config, env.services)
    [published] = job["published"]
    return published


def test_an_earlier_schemes_version_is_kept_until_other_bytes_come_then_renamed_once(
        lake_env: Lake, emulator: Any) -> None:
    env = lake_env
    at = run_instant(DAY)
    emulator.set_clock(at)
    rows = list(range(40))
    first = _load(env, rows, "r1", at)
    current = first["version"]

    # The lake as an earlier scheme left it: the same files under another version name.
    s3, bucket, catalog = env.services.s3, env.settings.bucket, env.services.catalog
    old_prefix = store.version_prefix(publish.TABLE, "adpulse", DAY, OLD_VERSION)
    source = store.version_prefix(publish.TABLE, "adpulse", DAY, current) + publish.PART
    s3.copy_object(Bucket=bucket, Key=old_prefix + publish.PART, CopySource={"Bucket": bucket, "Key": source})
    live = catalog.get_partition(publish.TABLE, DAY.isoformat(), "adpulse")
    assert live is not None
    catalog.set_partition(publish.TABLE, DAY.isoformat(), "adpulse", store.s3_uri(bucket, old_prefix),
                          {**live.parameters, "source_version": OLD_VERSION})
    renamed = publish.PublishResult("adpulse", DAY, OLD_VERSION, None, "published",
                                    store.s3_uri(bucket, old_prefix), Totals.from_dict(first["totals"]))
    publish.log_publish(renamed, fetched_at=at + dt.timedelta(seconds=30),
                        published_at=at + dt.timedelta(seconds=30), raw_object="s3://earlier/raw",
                        currency="JPY", s3=s3, catalog=catalog)  # that lake logged its publish too

    same_report = _load(env, rows, "r1", at + dt.timedelta(minutes=1))
    assert (same_report["outcome"], same_report["version"]) == ("unchanged", OLD_VERSION)

    new_bytes = _load(env, rows[::-1], "r2", at + dt.timedelta(minutes=2))
    assert new_bytes["outcome"] == "published"
    assert (new_bytes["version"], new_bytes["previous_version"]) == (current, OLD_VERSION)
    assert new_bytes["totals"] == first["totals"]

    again = _load(env, rows[7:] + rows[:7], "r3", at + dt.timedelta(minutes=3))
    assert (again["outcome"], again["version"]) == ("unchanged", current)
    log = publish.read_publish_log(s3, catalog, "adpulse", DAY)
    assert log["outcome"].to_pylist() == ["published", "published", "unchanged", "published", "unchanged"]
    assert log["version"].to_pylist() == [current, OLD_VERSION, OLD_VERSION, current, current]
