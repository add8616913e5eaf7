"""The statements DAG: its run reconciles what the SSPs' APIs and buckets issued, through the
Connections the hook resolves, and a rerun writes nothing new."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from ssp_revenue.allocate import reconcile
from ssp_revenue.lake import store
from ssp_revenue.operate import runtime

from .test_monthly_close import FIRST, seed

pytestmark = pytest.mark.dags
TOKYO = ZoneInfo("Asia/Tokyo")


def test_the_daily_statements_run_reconciles_what_arrived_and_waits_for_the_rest(
    dagbag: Any, airflow_lake: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSP_REVENUE_START_DATE", FIRST.isoformat())
    services = airflow_lake
    services.settings = services.settings.replace(start_date=FIRST)
    runtime.bootstrap(services)
    for ssp in ("adpulse", "xchange", "dropzone", "gamnet"):
        requests.post(emulator.url + "/_control/statements", timeout=10, json={
            "ssp": ssp, "month": "2026-11", "variant": "ivt", "params": {"since": FIRST.isoformat()}},
        ).raise_for_status()
    for day in (dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 2), dt.date(2026, 12, 3)):
        seed(services, emulator, day)

    dag = dagbag.get_dag("ssp_revenue_statements")
    instant = dt.datetime.combine(dt.date(2026, 12, 3), dt.time(10), tzinfo=TOKYO).astimezone(dt.UTC)
    emulator.set_clock(instant)
    run = dag.test(logical_date=instant, run_after=instant)
    assert "success" in str(run.state)
    found = {p.ssp: p.parameters["status"] for p in services.catalog.partitions(reconcile.TABLE)}
    # Fetched from their APIs and bucket; gamnet's is uploaded by an operator, not due until the 11th.
    assert found == {"adpulse": reconcile.WITHIN, "xchange": reconcile.WITHIN, "dropzone": reconcile.WITHIN}
    log = Path(os.environ["SSP_REVENUE_ALERTS_LOG"])
    assert not log.exists() or [json.loads(line) for line in log.read_text().splitlines()] == []

    before = store.list_keys(services.s3, services.settings.bucket, "tables/")
    again = dag.test(logical_date=instant + dt.timedelta(minutes=1), run_after=instant + dt.timedelta(minutes=1))
    assert "success" in str(again.state)
    assert store.list_keys(services.s3, services.settings.bucket, "tables/") == before
