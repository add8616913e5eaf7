"""Fetch chances under the real scheduler: the runs it makes are the schedule's, a hiccup on
a late SSP's first chance pages nobody, and the daily runs after the cutoff freeze what the
chances fetched.

A deployment of its own: two SSPs whose data is ready after the 06:00 daily run (nihon at
08:00, dropzone at 15:00 JST), one revenue date, the chances DAG catching up its runs in
order, then the daily DAG's runs.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from ssp_revenue.core import calendar, registry
from ssp_revenue.core.settings import Settings
from ssp_revenue.finalize import freeze
from ssp_revenue.lake import publish
from ssp_revenue.operate import incidents, schedule

from .conftest import Deployment, pipeline_environment, started
from .test_real_scheduler import lake_services

pytestmark = pytest.mark.scheduler

TOKYO = ZoneInfo("Asia/Tokyo")
DAY = dt.date(2026, 11, 20)
SSPS = ["nihon", "dropzone"]


@pytest.fixture(scope="module")
def chances(stack_state: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    config = tmp_path_factory.mktemp("config")
    shutil.copytree(Settings().config_dir, config, dirs_exist_ok=True)
    registry_file = config / "ssps.yaml"
    entries = yaml.safe_load(registry_file.read_text())["ssps"]
    registry_file.write_text(yaml.safe_dump({"ssps": [e for e in entries if e["name"] in SSPS]}))
    bucket = f"c-{uuid.uuid4().hex[:10]}"
    extra = {
        **pipeline_environment(bucket),
        "SSP_REVENUE_START_DATE": DAY.isoformat(),
        "SSP_REVENUE_END_DATE": DAY.isoformat(),
        "SSP_REVENUE_CONFIG_DIR": str(config),
        "SSP_REVENUE_CLOCK": "replay",
        "SSP_REVENUE_CATCHUP": "true",
        "SSP_REVENUE_RETRY_DELAY_SECONDS": "5",
    }
    yield from started(stack_state, extra, bucket, DAY)


def test_the_scheduler_makes_the_chance_runs_and_the_daily_runs_freeze_their_versions(
        chances: Deployment, emulator: Any) -> None:
    settings = Settings(start_date=DAY, end_date=DAY,
                        config_dir=Path(chances.extra_env["SSP_REVENUE_CONFIG_DIR"]))
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    cut = calendar.cutoff(DAY, TOKYO, settings.freeze_hours)
    start = calendar.run_logical_date(DAY, TOKYO)
    working = [r.due for r in schedule.runs_between(start, cut, ssps, settings) if r.kind == "chance"]
    # The cron fires at every chance time of day; where no (SSP, date) has a chance the run is empty.
    crons = [dt.datetime.combine(DAY + dt.timedelta(days=n), t, tzinfo=TOKYO).astimezone(dt.UTC)
             for n in range(3) for t in schedule.chance_times(ssps, settings)]
    fired = sorted(t for t in crons if start <= t < cut)
    assert set(working) <= set(fired) and len(working) == 3 * len(ssps)
    # The late SSP's first chance (nihon, D+1 08:00) meets a report still being written.
    emulator.fault("nihon", "still_writing", date=DAY, times=1)
    chances.wait_for_dag("ssp_revenue_chances")
    chances.cli("dags", "unpause", "ssp_revenue_chances")
    made = chances.wait_for_runs("ssp_revenue_chances", len(fired), seconds=1500)
    assert [r["state"] for r in made] == ["success"] * len(made), [
        chances.task_states(r["run_id"], "ssp_revenue_chances") for r in made if r["state"] != "success"]
    assert [r["logical_date"] for r in made] == fired
    chances.cli("dags", "pause", "ssp_revenue_chances")

    services = lake_services(chances.bucket)
    for config in ssps:
        fetches = publish.read_publish_log(services.s3, services.catalog, config.name, DAY).to_pylist()
        before = [f for f in fetches if f["fetched_at"] <= cut]
        # nihon's first chance failed validation (still writing): its other chances remain.
        assert len(before) >= (2 if config.name == "nihon" else 3), (config.name, before)

    # The first daily run after the cutoff (the run for D+2, at D+3 06:05): here DAY's own
    # scheduled run, made when that instant has come on the simulated clock.
    emulator.set_clock(calendar.run_due(DAY + dt.timedelta(days=2), TOKYO) + dt.timedelta(minutes=5))
    chances.cli("dags", "unpause", "ssp_revenue_daily")
    [daily] = chances.wait_for_runs(chances.DAILY, 1, seconds=600)
    assert daily["state"] == "success", chances.task_states(daily["run_id"])
    # It froze DAY from the last version fetched by the cutoff: a chance's.
    for config in ssps:
        entry = freeze.read_ledger(services.s3, chances.bucket, config.name, DAY)
        assert entry is not None and not entry.late, config.name
        fetches = publish.read_publish_log(services.s3, services.catalog, config.name, DAY).to_pylist()
        assert entry.fetched_at == max(f["fetched_at"] for f in fetches if f["fetched_at"] <= cut)
        truth = emulator.truth(config.name, DAY, entry.fetched_at)
        assert (entry.row_count, entry.impressions) == (truth["rows"], truth["impressions"])
    book = incidents.IncidentBook(services.s3, chances.bucket)
    assert book.open_incidents(SSPS) == [] and all(book.history(s) == [] for s in SSPS)
