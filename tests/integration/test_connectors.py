"""Each report style against the emulator over HTTP, reconciled to /_control/truth."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from decimal import Decimal
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.ingest.connectors import Credentials
from ssp_revenue.operate import pipeline

from .conftest import Lake, run_instant

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 5)


def money(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def published(env: Lake, ssp: str, day: dt.date) -> tuple[int, int, int, Decimal]:
    row = env.engine().query(
        "SELECT count(*), sum(impressions), sum(clicks), sum(revenue) FROM revenue "
        f"WHERE ssp = '{ssp}' AND revenue_date = DATE '{day.isoformat()}'").rows[0]
    return row[0], row[1], row[2], row[3]


def run(env: Lake, ssp: str, day: dt.date = DAY, connector: Any = None) -> dict[str, Any]:
    config = registry.find(env.registry, ssp)
    return pipeline.run_ssp(config, [day], connector or env.connector(ssp=ssp), env.services)


def assert_matches_truth(env: Lake, emulator: Any, ssp: str, day: dt.date, at: dt.datetime) -> None:
    truth = emulator.truth(ssp, day, at)
    assert published(env, ssp, day) == (
        truth["rows"], truth["impressions"], truth["clicks"], money(truth["revenue_micros"]))


# -- rest_json (hourly UTC, cursor pages, API key) ------------------------------------

def test_rest_json_rebuckets_hourly_utc_into_tokyo_dates_to_the_last_decimal(lake_env, emulator) -> None:
    at = run_instant(DAY)
    emulator.set_clock(at)
    connector = lake_env.connector(ssp="xchange")
    connector.page_size = 700  # 4,800 hourly rows: 7 pages
    job = run(lake_env, "xchange", connector=connector)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"], job["outcomes"]
    assert_matches_truth(lake_env, emulator, "xchange", DAY, at)
    facts = lake_env.services.s3.head_object(
        Bucket=lake_env.settings.bucket, Key=job["fetched"][0]["raw_object"])["Metadata"]["report-facts"]
    assert '"pages": 7' in facts
    tz = lake_env.engine().query("SELECT DISTINCT tz_policy, currency FROM revenue").rows
    assert tz == [("hourly_rebucketed", "USD")]
    # The pages land as served; an object landed before, re-serialised, reads the same.
    landed = lake_env.services.s3.get_object(
        Bucket=lake_env.settings.bucket, Key=job["fetched"][0]["raw_object"])["Body"].read()
    envelope = json.loads(gzip.decompress(landed))
    assert len(envelope["pages"]) == 7 and sum(len(p["data"]) for p in envelope["pages"]) == 4800
    before = gzip.compress(json.dumps(envelope, sort_keys=True).encode(), mtime=0)
    config = registry.find(lake_env.registry, "xchange")
    assert type(connector).parse(config, before, {}, DAY).table.equals(
        type(connector).parse(config, landed, {}, DAY).table)


def test_rest_json_rate_limit_is_waited_out_with_retry_after(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))
    emulator.profile("xchange", rate_limit_per_window=2, rate_window_seconds=1.0)
    connector = lake_env.connector(ssp="xchange")
    connector.page_size = 1000  # 5 pages, 2 requests a second
    connector.retry = type(connector.retry)(attempts=6, initial=0.01, jitter=0.01, sleep=time.sleep)
    started = time.monotonic()
    job = run(lake_env, "xchange", connector=connector)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"]
    assert time.monotonic() - started >= 1.0  # it really waited for the window


def test_rest_json_wrong_secret_is_actionable(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))
    wrong = Credentials(lake_env.settings.emulator_url, "xchange-key", "nope")
    job = run(lake_env, "xchange", connector=lake_env.connector(wrong, ssp="xchange"))
    [failed] = job["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("auth", "actionable")


def test_rest_json_bad_value_names_its_row(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))
    emulator.fault("xchange", "malformed_rows", date=DAY, times=1, row=1234)
    job = run(lake_env, "xchange")
    [failed] = [o for o in job["outcomes"] if o["severity"] != "ok"]
    assert "row=1234" in failed["detail"] and "revenue_usd" in failed["detail"]


# -- jp_csv (Shift_JIS, whole yen, tax included, totals row) --------------------------

def test_jp_csv_reconciles_after_stripping_consumption_tax(lake_env, emulator) -> None:
    from ssp_revenue.ingest.connectors.jp_csv import strip_consumption_tax

    at = run_instant(DAY) + dt.timedelta(hours=6)  # the export is ready 8 h after the JST day
    emulator.set_clock(at)
    job = run(lake_env, "nihon")
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"], job["outcomes"]
    rows = emulator.truth_rows("nihon", DAY, at)
    expected = sum((strip_consumption_tax(Decimal(r["revenue_micros"] // 1_000_000)) for r in rows),
                   Decimal(0))
    count, impressions, _, revenue = published(lake_env, "nihon", DAY)
    assert (count, impressions) == (len(rows), sum(r["impressions"] for r in rows))
    assert revenue == expected


def test_jp_csv_not_ready_converges(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY))  # 06:05 JST: the export comes at 08:00
    [failed] = run(lake_env, "nihon")["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("data_not_ready", "converging")


# -- file_drop (S3 drop bucket, manifest written last, re-deliveries) ---------------

def drop_run(env: Lake, emulator: Any, at: dt.datetime) -> dict[str, Any]:
    emulator.set_clock(at)  # the SSP delivers what is due as its clock moves
    return run(env, "dropzone")


def test_file_drop_reconciles_and_redelivery_makes_a_new_version_only_if_changed(lake_env, emulator) -> None:
    first = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(7), tzinfo=dt.UTC)
    job = drop_run(lake_env, emulator, first)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"], job["outcomes"]
    assert_matches_truth(lake_env, emulator, "dropzone", DAY, first)
    v1 = job["published"][0]["version"]
    job = drop_run(lake_env, emulator, first + dt.timedelta(hours=1))  # same file, same content
    assert job["published"][0]["outcome"] == "unchanged"
    later = first + dt.timedelta(hours=12)  # restated and re-delivered under the same name
    job = drop_run(lake_env, emulator, later)
    assert job["published"][0]["outcome"] == "published" and job["published"][0]["version"] != v1
    assert_matches_truth(lake_env, emulator, "dropzone", DAY, later)
    assert lake_env.engine().query("SELECT DISTINCT tz_policy, currency FROM revenue").rows == [
        ("ssp_date", "EUR")]


def test_file_drop_never_reads_a_file_still_being_written(lake_env, emulator) -> None:
    first = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(7), tzinfo=dt.UTC)
    drop_run(lake_env, emulator, first)
    before = published(lake_env, "dropzone", DAY)
    emulator.fault("dropzone", "still_writing", date=DAY, times=1)
    later = first + dt.timedelta(hours=12)  # re-delivery starts: new file, old manifest
    job = drop_run(lake_env, emulator, later)
    [waiting] = job["outcomes"]
    assert (waiting["reason"], waiting["severity"]) == ("data_not_ready", "converging")
    assert "still being written" in waiting["detail"]
    assert published(lake_env, "dropzone", DAY) == before
    job = drop_run(lake_env, emulator, later + dt.timedelta(minutes=5))  # manifest lands
    assert job["published"][0]["outcome"] == "published"


def test_file_drop_not_delivered_yet_converges(lake_env, emulator) -> None:
    job = drop_run(lake_env, emulator, dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(3), tzinfo=dt.UTC))
    [waiting] = job["outcomes"]
    assert (waiting["reason"], waiting["severity"]) == ("data_not_ready", "converging")


# -- service_account_job (JWT bearer, job, signed URL, hourly Los Angeles) -----------

@pytest.mark.parametrize("day", [
    dt.date(2026, 11, 5),   # an ordinary day (PST)
    dt.date(2026, 11, 1),   # Los Angeles falls back: its Nov 1 has 25 hours
    dt.date(2026, 11, 2),
    dt.date(2026, 3, 8),    # Los Angeles springs forward: its Mar 8 has 23 hours
    dt.date(2026, 3, 9),
])
def test_service_account_job_rebuckets_los_angeles_hours_into_tokyo_dates(lake_env, emulator, day) -> None:
    at = run_instant(day)
    emulator.set_clock(at)
    job = run(lake_env, "gamnet", day)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"], job["outcomes"]
    assert_matches_truth(lake_env, emulator, "gamnet", day, at)


def test_service_account_job_with_another_key_is_refused(lake_env, emulator) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    emulator.set_clock(run_instant(DAY))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    wrong = Credentials(lake_env.settings.emulator_url, "reports@gamnet-demo.iam.example", other)
    [failed] = run(lake_env, "gamnet", connector=lake_env.connector(wrong, ssp="gamnet"))["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("auth", "actionable")
    assert "PRIVATE KEY" not in failed["detail"]


def test_service_account_job_before_the_hours_close_converges(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY) - dt.timedelta(hours=6, minutes=30))  # 23:35 JST on D
    [failed] = run(lake_env, "gamnet")["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("data_not_ready", "converging")


# -- every HTTP style: transient faults heal within the run, bad credentials do not ---

@pytest.mark.parametrize("ssp", ["gamnet", "xchange", "nihon"])
def test_429_and_5xx_are_retried_to_success_in_every_http_style(lake_env, emulator, ssp) -> None:
    at = run_instant(DAY) + dt.timedelta(hours=3)
    emulator.set_clock(at)
    emulator.fault(ssp, "rate_limit", times=1, retry_after=0)
    emulator.fault(ssp, "server_error", times=2)
    job = run(lake_env, ssp)
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"], job["outcomes"]


def test_jp_csv_wrong_token_fails_fast_and_is_actionable(lake_env, emulator) -> None:
    emulator.set_clock(run_instant(DAY) + dt.timedelta(hours=3))
    wrong = Credentials(lake_env.settings.emulator_url, "nihon-account", "stale-token")
    [failed] = run(lake_env, "nihon", connector=lake_env.connector(wrong, ssp="nihon"))["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("auth", "actionable")


def test_file_drop_with_wrong_keys_is_actionable(lake_env, emulator) -> None:
    emulator.set_clock(dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(7), tzinfo=dt.UTC))
    good = lake_env.connector(ssp="dropzone").credentials
    wrong = Credentials(good.base_url, "testing", "testing", extra={**good.extra, "bucket": "not-shared-with-us"})
    [failed] = run(lake_env, "dropzone", connector=lake_env.connector(wrong, ssp="dropzone"))["outcomes"]
    assert (failed["reason"], failed["severity"]) == ("auth", "actionable")
    assert "not-shared-with-us" in failed["detail"]
