from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.core.clock import EmulatorClock
from ssp_revenue.ingest.connectors import Credentials, RetryPolicy, build_connector
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.operate import runtime
from ssp_revenue.operate.query import LocalEngine
from ssp_revenue.operate.runtime import Services

pytestmark = pytest.mark.integration

TOKYO_06 = dt.time(6, 0)


def run_instant(day: dt.date) -> dt.datetime:
    """06:05 JST the day after ``day``: when the daily run for ``day`` fetches."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(6, 5), tzinfo=ZoneInfo("Asia/Tokyo"))
    return local.astimezone(dt.UTC)


class Lake:
    """One test's lake on the real local stack: services, connector and query engine."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.services: Services = runtime.services_for(settings)
        runtime.bootstrap(self.services)
        self.registry = registry.load_registry(settings.config_dir / "ssps.yaml")
        self.config = registry.find(self.registry, "adpulse")
        self.clock = self.services.clock
        assert isinstance(self.clock, EmulatorClock)

    def connector(self, credentials: Credentials | None = None, ssp: str = "adpulse") -> Any:
        import time

        config = registry.find(self.registry, ssp)
        return build_connector(
            config, credentials or emulator_credentials(ssp, self.settings.emulator_url,
                                                        self.settings.aws_endpoint),
            self.settings, self.clock,
            retry=RetryPolicy(attempts=4, initial=0.01, jitter=0.01,
                              sleep=lambda s: time.sleep(min(s, 0.02))),
        )

    def engine(self) -> LocalEngine:
        return LocalEngine(self.settings, self.services.catalog.glue, self.services.s3)

    def keys(self, prefix: str) -> list[str]:
        from ssp_revenue.lake import store

        return store.list_keys(self.services.s3, self.settings.bucket, prefix)


@pytest.fixture
def lake_env(lake_settings: Any, emulator: Any) -> Lake:
    return Lake(lake_settings)
