"""SSP credentials never reach a task log or the lake's object metadata."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.core.clock import EmulatorClock
from ssp_revenue_airflow import local

pytestmark = pytest.mark.dags
DAY = dt.date(2026, 11, 5)


def secrets_in_connections() -> list[str]:
    values = []
    for key, raw in os.environ.items():
        if key.startswith("AIRFLOW_CONN_SSP_"):
            password = json.loads(raw)["password"]
            values.append(password)
            # A PEM key is long: any of its base64 lines leaking is a leak.
            values += [line for line in password.splitlines() if len(line) > 40]
    return values


def test_no_credential_in_logs_or_raw_metadata(daily_dag: Any, airflow_lake: Any, emulator: Any,
                                               capfd: Any) -> None:
    clock = EmulatorClock(airflow_lake.settings.emulator_url)
    emulator.fault("adpulse", "revoked_credentials", times=1)  # errors are logged too
    local.run_day(daily_dag, DAY, clock)
    local.run_day(daily_dag, DAY + dt.timedelta(days=1), clock)
    out, err = capfd.readouterr()
    logs = out + err
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    if log_dir.exists():
        logs += "".join(p.read_text(errors="replace") for p in log_dir.rglob("*") if p.is_file())
    secrets = secrets_in_connections()
    assert len(secrets) >= 4 and logs
    leaked = [s[:6] + "..." for s in secrets if s in logs]
    assert leaked == []

    s3, bucket = airflow_lake.s3, airflow_lake.settings.bucket
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="raw/")
            for o in page.get("Contents", [])]
    assert keys
    for key in keys:
        metadata = json.dumps(s3.head_object(Bucket=bucket, Key=key)["Metadata"])
        assert not [s for s in secrets if s in metadata], key
