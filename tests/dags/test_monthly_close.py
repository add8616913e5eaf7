"""The monthly close DAG: refuses with one incident, then closes, files the report and resolves it."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ssp_revenue.allocate import close
from ssp_revenue.core import registry
from ssp_revenue.operate import runtime

from .conftest import run_every_ssp

pytestmark = pytest.mark.dags
TOKYO = ZoneInfo("Asia/Tokyo")
FIRST = dt.date(2026, 11, 29)


def seed(services: Any, emulator: Any, day: dt.date) -> None:
    """Every SSP's daily steps at 07:00 JST on ``day``, in this process."""
    at = dt.datetime.combine(day, dt.time(7), tzinfo=TOKYO).astimezone(dt.UTC)
    run_every_ssp(services, emulator, at, [FIRST, FIRST + dt.timedelta(days=1)])


def close_run(dag: Any, day: dt.date) -> Any:
    instant = dt.datetime.combine(day, dt.time(9), tzinfo=TOKYO).astimezone(dt.UTC)
    return dag.test(logical_date=instant, run_after=instant)


def test_the_previous_month_is_closed_or_one_incident_opened_until_it_is(
    dagbag: Any, airflow_lake: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSP_REVENUE_START_DATE", FIRST.isoformat())
    services = airflow_lake
    services.settings = services.settings.replace(start_date=FIRST)
    runtime.bootstrap(services)
    dag = dagbag.get_dag("ssp_revenue_monthly_close")
    for day in (dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 2)):
        seed(services, emulator, day)

    # Dec 2 09:00 JST: Nov 30 freezes at 12:00, so the close refuses, naming every SSP's date.
    refused = close_run(dag, dt.date(2026, 12, 2))
    assert "failed" in str(refused.state)
    log = Path(os.environ["SSP_REVENUE_ALERTS_LOG"])
    alerts = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(a["reason"], a["revenue_date"]) for a in alerts] == [("month_not_closable", "2026-11-01")]
    assert alerts[0]["detail"].count("2026-11-30: not frozen") == 5

    seed(services, emulator, dt.date(2026, 12, 3))
    closed = close_run(dag, dt.date(2026, 12, 3))
    assert "success" in str(closed.state)
    month = close.Month(2026, 11)
    bucket = services.settings.bucket
    assert close.issues(services.s3, bucket, month) == [1]
    body, manifest = close.read_issue(services.s3, bucket, month, 1)
    assert manifest["revenue_dates"] == ["2026-11-29", "2026-11-30"]
    assert {r["ssp"] for r in close.parse_csv(body)} == {c.name for c in registry.load_registry(
        services.settings.config_dir / "ssps.yaml")}
    page = services.s3.get_object(Bucket=bucket, Key=close.issue_key(month, 1, "revenue-2026-11.html"))
    assert b"Closed, issue 1" in page["Body"].read()
    # The incident the refusal opened is resolved by the close: one page, one all-clear.
    notices = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(n["event"], n["incident_id"]) for n in notices] == [
        ("opened", "all.month_not_closable.2026-11-01.1"), ("resolved", "all.month_not_closable.2026-11-01.1")]
