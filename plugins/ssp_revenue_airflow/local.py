"""Airflow against the embedded stack: environment, metadata DB, and day-by-day replays.

Used by ``make demo`` and the DAG tests. Importing this module does not import
Airflow: the environment must be in place before Airflow reads its config.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]


def airflow_environment(local_dir: Path) -> dict[str, str]:
    """Static Airflow settings for a single-user SQLite metadata DB under ``local_dir``."""
    home = (local_dir / "airflow").resolve()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:8080/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",  # as airflow.env
        "GX_ANALYTICS_ENABLED": "False",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "plugins"), str(ROOT / "include"), os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
    }


def stack_environment(stack_file: Path) -> dict[str, str]:
    """Connections and settings that point the DAG at the running local stack."""
    from ssp_revenue.operate import stack

    state = json.loads(stack_file.read_text())
    env = {
        **stack.LOCAL_AWS_ENV,
        "SSP_REVENUE_STACK_FILE": str(stack_file.resolve()),
        "SSP_REVENUE_CLOCK": "emulator",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": stack.LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
                "password": stack.LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                "extra": {"endpoint_url": state["s3_endpoint"], "region_name": state["region"]},
            }
        ),
    }
    from ssp_revenue.ingest.credentials import emulated_ssps, emulator_credentials

    for name in emulated_ssps(state["emulator_url"]):
        account = emulator_credentials(name, state["emulator_url"], state["s3_endpoint"])
        env[f"AIRFLOW_CONN_SSP_{name.upper()}"] = json.dumps(
            {
                "conn_type": "http",
                "login": account.login,
                "password": account.secret,
                "extra": {"base_url": account.base_url, **account.extra},
            }
        )
    return env


def migrate_db(env: dict[str, str]) -> None:
    """``airflow db migrate`` once per metadata DB (a no-op when already current)."""
    marker = Path(env["AIRFLOW_HOME"]) / ".migrated"
    if marker.exists():
        return
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL)
    marker.touch()


def run_instant(revenue_date: dt.date, tz: str = "Asia/Tokyo") -> dt.datetime:
    """When the scheduler starts the run for ``revenue_date``: D+1 06:00 business time."""
    from ssp_revenue.core import calendar

    return calendar.run_due(revenue_date, ZoneInfo(tz))


def run_day(dag: Any, revenue_date: dt.date, clock: Any, *, minutes_after: int = 5) -> Any:
    """One daily run exactly as the scheduler makes it, on the simulated clock.

    Logical date = the data interval's start (D 06:00), run_after = its end
    (D+1 06:00): the same run ``airflow backfill create`` or the scheduler
    would create for revenue date D.
    """
    from ssp_revenue.core import calendar

    tz = ZoneInfo("Asia/Tokyo")
    due = calendar.run_due(revenue_date, tz)
    clock.set(due + dt.timedelta(minutes=minutes_after))
    return dag.test(logical_date=calendar.run_logical_date(revenue_date, tz), run_after=due)


def lake_snapshot(services: Any) -> dict[str, Any]:
    """What must not depend on how the runs were made (scheduler, backfill or dag.test()):
    each table's partitions and their versions, the ledger, the closes' checksums."""
    from ssp_revenue.lake import store

    bucket = services.settings.bucket
    tables = {}
    for table in ("revenue", "revenue_final", "allocation_final"):
        tables[table] = {(p.revenue_date, p.ssp): p.location.split(bucket, 1)[1]
                         for p in services.catalog.partitions(table)}
    ledger = {}
    for key in store.list_keys(services.s3, bucket, "ledger/finalized/"):
        body = services.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        ledger[key] = json.loads(body.replace(f"s3://{bucket}/", "s3://<bucket>/"))  # the lake's own name
    closes = sorted(k for k in store.list_keys(services.s3, bucket, "closes/") if k.endswith(".csv"))
    close_sha = {k: services.s3.head_object(Bucket=bucket, Key=k).get("ETag") for k in closes}
    return {"tables": tables, "ledger": ledger, "closes": close_sha}
