"""The lake over time: each report stored once, every fetch logged, an unchanged report a no-op."""

from __future__ import annotations

import datetime as dt

import pytest

from ssp_revenue.lake import publish, store
from ssp_revenue.operate import pipeline

from .conftest import run_instant

DAY = dt.date(2026, 11, 5)
pytestmark = pytest.mark.integration


def run(env):  # type: ignore[no-untyped-def]
    return pipeline.run_ssp(env.config, [DAY], env.connector(), env.services)


def fetch_log(env):  # type: ignore[no-untyped-def]
    return env.engine().query(
        "SELECT fetched_at, sha256, raw_object, stored, report FROM fetch_log "
        f"WHERE revenue_date = DATE '{DAY.isoformat()}' AND ssp = 'adpulse' ORDER BY fetched_at").rows


def test_a_refetched_report_is_stored_once_logged_every_time_and_not_loaded_again(
        lake_env, emulator, monkeypatch) -> None:
    at = run_instant(DAY)
    emulator.set_clock(at)
    run(lake_env)
    emulator.set_clock(at + dt.timedelta(minutes=1))  # same figures; a new report job id
    reads: list[str] = []
    real_open = store.open_raw
    monkeypatch.setattr(store, "open_raw", lambda s3, bucket, key: reads.append(key) or real_open(s3, bucket, key))
    job = run(lake_env)

    raw = lake_env.keys(f"raw/ssp=adpulse/revenue_date={DAY.isoformat()}/")
    assert len(raw) == 1, "one distinct body, one raw object"
    logged = fetch_log(lake_env)
    assert [row[3] for row in logged] == [True, False]
    assert len({row[1] for row in logged}) == 1 and len({row[2] for row in logged}) == 1
    assert logged[0][2] == store.s3_uri(lake_env.settings.bucket, raw[0])
    assert reads == [], "an unchanged report is neither parsed nor validated nor loaded"
    assert job["published"][0]["outcome"] == "unchanged"
    assert any("validation reused" in o["detail"] for o in job["outcomes"])
    history = publish.read_publish_log(lake_env.services.s3, lake_env.services.catalog, "adpulse", DAY)
    assert history["outcome"].to_pylist() == ["published", "unchanged"]
    assert len(set(history["version"].to_pylist())) == 1
    assert len(set(history["fetched_at"].to_pylist())) == 2, "each fetch is its own publish_log row"

    # Restated figures: a new body, stored and published as a new version.
    emulator.set_clock(at + dt.timedelta(hours=20))
    reads.clear()
    job = run(lake_env)
    assert job["published"][0]["outcome"] == "published" and reads
    assert len(lake_env.keys(f"raw/ssp=adpulse/revenue_date={DAY.isoformat()}/")) == 2
    assert [row[3] for row in fetch_log(lake_env)] == [True, False, True]


def test_a_partition_published_before_report_identities_is_loaded_once_then_skipped(
        lake_env, emulator) -> None:
    at = run_instant(DAY)
    emulator.set_clock(at)
    run(lake_env)
    catalog = lake_env.services.catalog
    part = catalog.get_partition("revenue", DAY.isoformat(), "adpulse")
    legacy = {k: v for k, v in part.parameters.items()
              if k in ("source_version", "row_count", "revenue_total", "previous_version")}
    catalog.set_partition("revenue", DAY.isoformat(), "adpulse", part.location, legacy)

    emulator.set_clock(at + dt.timedelta(minutes=1))
    job = run(lake_env)
    assert not any("validation reused" in o["detail"] for o in job["outcomes"]), "no identity to match yet"
    assert job["published"][0]["outcome"] == "unchanged"
    assert catalog.get_partition("revenue", DAY.isoformat(), "adpulse").parameters["report"]

    emulator.set_clock(at + dt.timedelta(minutes=2))
    job = run(lake_env)
    assert any("validation reused" in o["detail"] for o in job["outcomes"])
    history = publish.read_publish_log(lake_env.services.s3, catalog, "adpulse", DAY)
    assert history["outcome"].to_pylist() == ["published", "unchanged", "unchanged"]
    assert history["impressions"].to_pylist()[-1] == history["impressions"].to_pylist()[0]


def test_the_documented_lifecycle_applies_and_tag_mode_marks_what_it_expires(lake_env, emulator) -> None:
    import json
    from pathlib import Path

    from ssp_revenue.operate import maintenance, vacuum

    s3, bucket = lake_env.services.s3, lake_env.settings.bucket
    rules = json.loads((Path(__file__).resolve().parents[2] / "include" / "aws" / "s3-lifecycle.json").read_text())
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rules)
    applied = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert {r["ID"] for r in applied} == {r["ID"] for r in rules["Rules"]}

    at = run_instant(DAY)
    for hours in (0, 20):  # two versions: the first superseded
        emulator.set_clock(at + dt.timedelta(hours=hours))
        run(lake_env)
    settings = lake_env.settings.replace(vacuum_mode="tag")
    chosen = maintenance.vacuum_lake(s3, lake_env.services.catalog, settings, at + dt.timedelta(days=9),
                                     apply=True)
    assert [c.why for c in chosen.doomed] == ["superseded"]
    for key in chosen.doomed[0].keys:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        assert tags == [{"Key": vacuum.VACUUM_TAG, "Value": "expired"}]
    live = lake_env.services.catalog.get_partition("revenue", DAY.isoformat(), "adpulse")
    for key in lake_env.keys(store.split_uri(live.location)[1]):
        assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == []
