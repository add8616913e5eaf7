from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ssp_revenue_airflow import local

from ..conftest import LOCAL, ROOT


@pytest.fixture(scope="session")
def dagbag() -> Any:
    local.migrate_db(dict(os.environ))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture
def daily_dag(dagbag: Any) -> Any:
    return dagbag.get_dag("ssp_revenue_daily")


START = "2026-11-05"


@pytest.fixture
def airflow_lake(stack_state: dict[str, object], emulator: Any, tmp_path: Any,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The DAG pointed at the local stack, with a bucket and database of this test's own."""
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import runtime

    for key, value in local.stack_environment(LOCAL / "stack.json").items():
        monkeypatch.setenv(key, value)
    suffix = uuid.uuid4().hex[:10]
    monkeypatch.setenv("SSP_REVENUE_BUCKET", f"d-{suffix}")
    monkeypatch.setenv("SSP_REVENUE_GLUE_DATABASE", f"d_{suffix}")
    monkeypatch.setenv("SSP_REVENUE_START_DATE", START)
    monkeypatch.setenv("SSP_REVENUE_ADJUSTMENT_DAYS", "4")
    monkeypatch.setenv("SSP_REVENUE_ALERTS_LOG", str(tmp_path / "alerts.jsonl"))
    settings = Settings.from_env()
    yield runtime.services_for(settings)


def run_every_ssp(services: Any, emulator: Any, at: Any, dates: list[Any]) -> None:
    """Every SSP's daily steps at ``at`` for ``dates``, in this process (an earlier run)."""
    from ssp_revenue.core import registry
    from ssp_revenue.ingest.credentials import emulator_credentials
    from ssp_revenue.operate import runtime
    from ssp_revenue.operate.pipeline import run_ssp

    settings = services.settings
    emulator.set_clock(at)
    for config in registry.load_registry(settings.config_dir / "ssps.yaml"):
        connector = runtime.connector(
            config, emulator_credentials(config.name, settings.emulator_url, settings.aws_endpoint), services)
        run_ssp(config, dates, connector, services)
