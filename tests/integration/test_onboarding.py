"""Onboarding: ``ssp check`` against the emulator over HTTP writes nothing; ``ssp new`` stays a candidate."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.ingest.connectors import Credentials
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.operate import onboarding, pipeline

from .conftest import Lake, run_instant

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 11, 5)
ROOT = Path(__file__).resolve().parents[2]


def snapshot(env: Lake) -> dict[str, Any]:
    """Every object in the lake's bucket (key and ETag) and every table and partition in its catalog."""
    s3, glue = env.services.s3, env.services.catalog.glue
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=env.settings.bucket):
        objects.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    tables = [t["Name"] for t in glue.get_tables(DatabaseName=env.settings.glue_database)["TableList"]]
    partitions = {
        name: sorted((tuple(p["Values"]), p["StorageDescriptor"]["Location"])
                     for p in glue.get_partitions(DatabaseName=env.settings.glue_database,
                                                  TableName=name)["Partitions"])
        for name in tables
    }
    return {"objects": objects, "partitions": partitions}


def dry_run(env: Lake, ssp: str, credentials: Credentials | None = None) -> onboarding.DryRun:
    config = registry.find(env.registry, ssp)
    account = credentials or emulator_credentials(ssp, env.settings.emulator_url, env.settings.aws_endpoint)
    return onboarding.check(config, account, env.settings, env.clock, catalog=env.services.catalog,
                            revenue_date=DAY, sample=3)


@pytest.mark.parametrize("ssp", ["adpulse", "xchange", "nihon"])
def test_ssp_check_reconciles_to_the_truth_and_writes_nothing(lake_env: Lake, emulator: Any, ssp: str) -> None:
    at = run_instant(DAY) + dt.timedelta(hours=3)
    emulator.set_clock(at)
    before = snapshot(lake_env)
    result = dry_run(lake_env, ssp)
    assert snapshot(lake_env) == before
    if ssp != "nihon":  # nihon states yen with tax; the truth is what it states, the check strips the tax
        truth = emulator.truth(ssp, DAY, at)
        assert (result.totals["rows"], result.totals["impressions"], result.totals["clicks"],
                Decimal(result.totals["revenue"])) == (
            truth["rows"], truth["impressions"], truth["clicks"], Decimal(truth["revenue_micros"]).scaleb(-6))
    assert len(result.first_rows) == 3 and {r["ssp"] for r in result.first_rows} == {ssp}
    assert result.live_version is None and result.would.startswith("publish version")
    assert "written: nothing" in result.render()

    # After a real run publishes the same report, the check says a run would change nothing.
    config = registry.find(lake_env.registry, ssp)
    pipeline.run_ssp(config, [DAY], lake_env.connector(ssp=ssp), lake_env.services)
    after_run = snapshot(lake_env)
    again = dry_run(lake_env, ssp)
    assert snapshot(lake_env) == after_run
    assert again.version == result.version == again.live_version
    assert again.would.startswith("nothing")


def test_ssp_check_names_what_to_fix(lake_env: Lake, emulator: Any) -> None:
    emulator.set_clock(run_instant(DAY))
    before = snapshot(lake_env)
    good = emulator_credentials("adpulse", lake_env.settings.emulator_url)
    with pytest.raises(onboarding.OnboardingError) as refused:
        dry_run(lake_env, "adpulse", dataclasses.replace(good, secret="wrong"))
    assert "ssp adpulse, revenue date 2026-11-05" in refused.value.problem
    assert "login and password in Connection ssp_adpulse" in refused.value.fix

    emulator.set_clock(dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC))  # the day is not over yet
    with pytest.raises(onboarding.OnboardingError) as early:
        dry_run(lake_env, "adpulse")
    assert "available_after" in early.value.fix

    emulator.set_clock(run_instant(DAY))
    emulator.fault("adpulse", "renamed_column", date=DAY, times=1)
    with pytest.raises(onboarding.OnboardingError) as drift:
        dry_run(lake_env, "adpulse")
    assert "columns" in drift.value.problem and "style 'async_job'" in drift.value.fix
    assert snapshot(lake_env) == before


def test_ssp_new_writes_a_candidate_no_dag_reads_and_a_connection_template(lake_env: Lake, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(lake_env.settings.config_dir, config_dir)
    live_before = (config_dir / "ssps.yaml").read_text()
    settings = dataclasses.replace(lake_env.settings, config_dir=config_dir)

    entries, template = onboarding.new_candidate(settings, "kaisha", "jp_csv", timezone="Asia/Tokyo",
                                                 currency="JPY")
    assert (config_dir / "ssps.yaml").read_text() == live_before
    assert [c.name for c in registry.load_registry(config_dir / "ssps.yaml")] == [
        c.name for c in lake_env.registry]
    candidate, live = onboarding.find_config(settings, "kaisha")
    assert (candidate.style, candidate.connection_id, live) == ("jp_csv", "ssp_kaisha", False)
    assert candidate.tz_policy == "business_zone"
    assert registry.load_registry(entries)[-1] == candidate
    filled = json.loads(template.read_text())
    assert filled["conn_type"] == "http" and filled["password"].startswith("<")
    with pytest.raises(onboarding.OnboardingError, match="not filled in"):
        onboarding.credentials_from_connection(filled)

    hourly, _ = onboarding.new_candidate(settings, "stunde", "rest_json", timezone="UTC", currency="USD")
    assert registry.load_registry(hourly)[-1].tz_policy == "hourly_rebucketed"
    with pytest.raises(onboarding.OnboardingError, match="already has an entry"):
        onboarding.new_candidate(settings, "kaisha", "jp_csv", timezone="Asia/Tokyo", currency="JPY")
    with pytest.raises(onboarding.OnboardingError, match="no report style"):
        onboarding.new_candidate(settings, "other", "xml_soap", timezone="UTC", currency="USD")
    with pytest.raises(onboarding.OnboardingError, match="ISO 4217"):
        onboarding.new_candidate(settings, "other", "rest_json", timezone="UTC", currency="dollars")
    assert [c.name for c in registry.load_registry(entries)] == ["kaisha", "stunde"]


def test_the_cli_dry_run_prints_the_figures_and_exits_zero(lake_env: Lake, emulator: Any) -> None:
    emulator.set_clock(run_instant(DAY))
    before = snapshot(lake_env)
    s = lake_env.settings
    env = {**os.environ, "SSP_REVENUE_BUCKET": s.bucket, "SSP_REVENUE_GLUE_DATABASE": s.glue_database,
           "SSP_REVENUE_AWS_ENDPOINT": str(s.aws_endpoint), "SSP_REVENUE_EMULATOR_URL": str(s.emulator_url),
           "SSP_REVENUE_REGION": s.region, "SSP_REVENUE_CLOCK": "emulator",
           "SSP_REVENUE_LOCAL_DIR": str(ROOT / ".local" / "no-stack-here"),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("SSP_REVENUE_STACK_FILE", None)
    done = subprocess.run([sys.executable, "-m", "ssp_revenue.operate.cli", "ssp", "check", "adpulse",
                           "--date", DAY.isoformat()], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "a run would: publish version" in done.stdout and "written: nothing" in done.stdout
    assert snapshot(lake_env) == before
    missing = subprocess.run([sys.executable, "-m", "ssp_revenue.operate.cli", "ssp", "check", "nobody",
                              "--date", DAY.isoformat()], env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "ssp-revenue ssp new nobody --like" in missing.stderr
