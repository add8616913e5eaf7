"""One benchmark session: the local stack, settings, services and a fetched SSP-day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from ssp_revenue.core import registry
from ssp_revenue.core.clock import FixedClock
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.connectors import ParsedReport, RetryPolicy, build_connector, connector_class
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.operate import runtime, stack
from ssp_revenue.operate.runtime import Services

LOCAL = Path(".local") / "bench"
SSP = "adpulse"


def post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60):  # nosec B310: the local emulator
        pass


def rows_per_day(ssp: str, rows: int) -> int:
    """Emulator rows for ``rows`` report rows a day: hourly SSPs report each row 24 times."""
    from ssp_emulator.figures import DEFAULT_PROFILES

    return max(1, rows // 24) if DEFAULT_PROFILES[ssp].hourly else rows


@dataclasses.dataclass
class Session:
    state: dict[str, Any]
    settings: Settings
    services: Services
    config: SspConfig
    rows: int

    def at(self, day: dt.date) -> dt.datetime:
        """Noon UTC the day after: the report is complete and served."""
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC)

    def connector(self, day: dt.date) -> Any:
        at = self.at(day)
        post(self.state["emulator_url"] + "/_control/clock", {"now": at.isoformat()})
        self.services.clock = FixedClock(at)
        return build_connector(
            self.config, emulator_credentials(SSP, self.state["emulator_url"]), self.services.settings,
            self.services.clock, retry=RetryPolicy(attempts=3))

    def fetch_parsed(self, day: dt.date) -> ParsedReport:
        report = self.connector(day).fetch(day)
        return connector_class(self.config.style).parse(self.config, report.body.read(), report.facts, day)


def bench_settings(state: dict[str, Any]) -> Settings:
    """The benchmarks' lake (bucket and Glue database ``bench``) on a running stack."""
    return Settings(bucket="bench", glue_database="bench", region=state["region"],
                    aws_endpoint=state["s3_endpoint"], emulator_url=state["emulator_url"])


def open_session(rows: int) -> tuple[Session, stack.LocalStack]:
    local_stack = stack.LocalStack(LOCAL)
    state = local_stack.up()
    os.environ.update(stack.LOCAL_AWS_ENV)
    settings = bench_settings(state)
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    config = registry.find(registry.load_registry(settings.config_dir / "ssps.yaml"), SSP)
    post(state["emulator_url"] + "/_control/profile",
         {"ssp": SSP, "rows": rows, "part_size": 8 * 1024 * 1024})
    return Session(state, settings, services, config, rows), local_stack
