"""fetch -> validate -> publish -> query, on the real moto server and emulator over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ssp_revenue.lake import store
from ssp_revenue.operate import pipeline
from ssp_revenue.operate.outcomes import Severity

from .conftest import run_instant

DAY = dt.date(2026, 11, 5)
pytestmark = pytest.mark.integration


def run(env, day=DAY, connector=None):  # type: ignore[no-untyped-def]
    return pipeline.run_ssp(env.config, [day], connector or env.connector(), env.services)


def published_totals(env, day=DAY):  # type: ignore[no-untyped-def]
    result = env.engine().query(
        "SELECT count(*), sum(impressions), sum(clicks), sum(revenue) FROM revenue "
        f"WHERE revenue_date = DATE '{day.isoformat()}' AND ssp = 'adpulse'"
    )
    return result.rows[0]


def location(env, day=DAY):  # type: ignore[no-untyped-def]
    part = env.services.catalog.get_partition("revenue", day.isoformat(), "adpulse")
    return part.location if part else None


def test_query_returns_the_emulators_truth_to_the_last_decimal(lake_env, emulator) -> None:
    at = run_instant(DAY)
    emulator.set_clock(at)
    job = run(lake_env)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"]  # not frozen yet
    truth = emulator.truth("adpulse", DAY, at)
    rows, impressions, clicks, revenue = published_totals(lake_env)
    assert (rows, impressions, clicks) == (truth["rows"], truth["impressions"], truth["clicks"])
    assert revenue == Decimal(truth["revenue_micros"]).scaleb(-6)
    assert isinstance(revenue, Decimal)

    # Lineage on every row, and the raw body kept, byte for byte.
    lineage = lake_env.engine().query(
        "SELECT DISTINCT source_version, raw_object FROM revenue")
    assert len(lineage.rows) == 1
    version, raw_uri = lineage.rows[0]
    assert location(lake_env).endswith(f"version={version}/")
    bucket, key = store.split_uri(raw_uri)
    body, facts = store.read_raw(lake_env.services.s3, bucket, key)
    assert key.rsplit("/", 1)[-1].startswith(__import__("hashlib").sha256(body).hexdigest())
    assert facts["totals"]["revenue_micros"] == truth["revenue_micros"]


def test_rerun_with_unchanged_figures_creates_no_new_version(lake_env, emulator) -> None:
    at = run_instant(DAY) + dt.timedelta(days=3)  # figures have settled
    emulator.set_clock(at)
    run(lake_env)
    first_location = location(lake_env)
    versions = lake_env.keys("tables/revenue/")
    emulator.set_clock(at + dt.timedelta(hours=1))
    job = run(lake_env)
    assert job["published"][0]["outcome"] == "unchanged"
    assert location(lake_env) == first_location
    assert lake_env.keys("tables/revenue/") == versions
    log = lake_env.engine().query("SELECT outcome FROM publish_log ORDER BY fetched_at")
    assert [r[0] for r in log.rows] == ["published", "unchanged"]


def test_a_restatement_publishes_a_new_version_and_switches(lake_env, emulator) -> None:
    at = run_instant(DAY)
    emulator.set_clock(at)
    run(lake_env)
    old = location(lake_env)
    emulator.set_clock(at + dt.timedelta(days=2))  # past later restatements
    job = run(lake_env)
    assert job["published"][0]["outcome"] == "published"
    assert location(lake_env) != old
    truth = emulator.truth("adpulse", DAY, at + dt.timedelta(days=2))
    assert published_totals(lake_env)[3] == Decimal(truth["revenue_micros"]).scaleb(-6)
    assert len(lake_env.keys("tables/revenue/")) == 2  # old version kept for readers


def test_malformed_batch_is_quarantined_and_the_old_version_stays(lake_env, emulator) -> None:
    at = run_instant(DAY)
    emulator.set_clock(at)
    run(lake_env)
    before = published_totals(lake_env)
    old = location(lake_env)

    emulator.set_clock(at + dt.timedelta(days=1))  # figures restated, but the body is broken
    emulator.fault("adpulse", "malformed_rows", date=DAY, times=1, row=3)
    job = run(lake_env)

    failed = [o for o in job["outcomes"] if o["severity"] != "ok"]
    assert len(failed) == 1
    assert failed[0]["step"] == "validate"
    assert failed[0]["severity"] == Severity.CONVERGING.value  # before the cutoff: heals next run
    assert "row=3" in failed[0]["detail"] and "revenue_micros" in failed[0]["detail"]
    assert job["published"] == []
    assert location(lake_env) == old
    assert published_totals(lake_env) == before

    [record_key] = lake_env.keys("quarantine/ssp=adpulse/revenue_date=2026-11-05/")
    record = json.loads(lake_env.services.s3.get_object(
        Bucket=lake_env.settings.bucket, Key=record_key)["Body"].read())
    assert record["reason"] == "malformed_report" and record["row"] == 3
    raw_bucket, raw_key = store.split_uri(record["raw_object"])
    assert lake_env.services.s3.head_object(Bucket=raw_bucket, Key=raw_key)  # raw body kept

    # The fault was transient: the next run publishes the restated figures.
    emulator.set_clock(at + dt.timedelta(days=1, hours=1))
    job = run(lake_env)
    assert job["published"][0]["outcome"] == "published"


def test_a_wrong_currency_past_cutoff_and_grace_opens_one_incident_with_its_consequence(
        lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY) + dt.timedelta(days=3))  # past cutoff (D + 60 h) + 24 h grace
    emulator.fault("adpulse", "wrong_currency", date=DAY, times=1)
    job = run(lake_env)
    failed, missing = [o for o in job["outcomes"] if o["severity"] != "ok"]
    assert failed["severity"] == "actionable" and failed["reason"] == "wrong_currency"
    assert "currency" in failed["detail"]
    # ...and with nothing validated by cutoff + grace, the date itself is reported.
    assert (missing["step"], missing["reason"], missing["severity"]) == (
        "freeze", "no_version_at_cutoff", "actionable")
    with pytest.raises(Exception, match="1 incident") as raised:
        pipeline.raise_if_actionable(job, lake_env.services)
    [page] = raised.value.alerts
    assert (page["incident_id"], page["dates"]) == ("adpulse.wrong_currency.1", [DAY.isoformat()])
    assert list(page["consequences"]) == [DAY.isoformat()]  # not paged on its own


def test_schema_drift_is_actionable_and_publishes_nothing(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))
    emulator.fault("adpulse", "renamed_column", date=DAY, times=1)
    job = run(lake_env)
    [failed] = [o for o in job["outcomes"] if o["severity"] != "ok"]
    assert (failed["reason"], failed["severity"]) == ("schema_drift", "actionable")
    assert location(lake_env) is None
    assert len(lake_env.keys("quarantine/")) == 1


def test_duplicated_rows_fail_validation(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))
    emulator.fault("adpulse", "duplicated_rows", date=DAY, times=1)
    job = run(lake_env)
    [failed] = [o for o in job["outcomes"] if o["severity"] != "ok"]
    assert "compound_columns_to_be_unique" in failed["detail"]
    assert "total rows" in failed["detail"]


def test_data_not_ready_converges(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY) - dt.timedelta(hours=8))  # 22:05 JST on D itself
    job = run(lake_env)
    [failed] = job["outcomes"]
    assert (failed["step"], failed["reason"], failed["severity"]) == (
        "fetch", "data_not_ready", "converging")
    assert lake_env.keys("raw/") == []


def test_429_5xx_timeouts_and_truncated_bodies_are_retried_to_success(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))
    emulator.fault("adpulse", "rate_limit", times=2, retry_after=0)
    emulator.fault("adpulse", "server_error", times=1)  # 3 failures < 4 attempts
    emulator.fault("adpulse", "truncated", date=DAY, times=1)
    job = run(lake_env)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"]


def test_timeouts_are_retried(lake_env, emulator) -> None:
    from ssp_revenue.ingest.connectors import RetryPolicy, build_connector
    from ssp_revenue.ingest.credentials import emulator_credentials

    emulator.set_clock(run_instant(DAY))
    emulator.fault("adpulse", "timeout", times=1, seconds=2)
    connector = build_connector(
        lake_env.config, emulator_credentials("adpulse", lake_env.settings.emulator_url),
        lake_env.settings, lake_env.clock, retry=RetryPolicy(attempts=3, initial=0.01, jitter=0.01),
        timeout=0.5,
    )
    job = run(lake_env, connector=connector)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"]


def test_revoked_credentials_fail_fast_and_are_actionable(lake_env, emulator) -> None:
    from ssp_revenue.ingest.connectors import Credentials

    emulator.set_clock(run_instant(DAY))
    wrong = Credentials(lake_env.settings.emulator_url, "adpulse-client", "not-the-secret")
    job = run(lake_env, connector=lake_env.connector(wrong))
    [failed] = job["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("auth", "actionable")
    assert "not-the-secret" not in json.dumps(job)
