"""Assemble a step's inputs (settings, clock, clients) at the edge, once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ssp_revenue.core import calendar, registry
from ssp_revenue.core.clock import Clock, EmulatorClock, SystemClock
from ssp_revenue.core.settings import Settings
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog
from ssp_revenue.operate import aws

if TYPE_CHECKING:
    from ssp_revenue.ingest.connectors import Credentials, ReportConnector


@dataclasses.dataclass
class Services:
    """What a step needs from outside: settings, a clock and the lake's clients."""

    settings: Settings
    clock: Clock
    s3: Any
    catalog: GlueCatalog

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    def cutoff(self, revenue_date: dt.date) -> dt.datetime:
        return calendar.cutoff(revenue_date, self.settings.tz, self.settings.freeze_hours)

    def window_start(self, now: dt.datetime) -> dt.date:
        """The oldest date a daily run made at ``now`` still fetches."""
        days = max(self.settings.refetch_days, self.settings.adjustment_days)
        return calendar.anchor_date(now, self.settings.tz) - dt.timedelta(days=days - 1)


# A run that starts at its due time reads the clock a few minutes later (the
# demo, the tests and the benchmarks use the same offset).
RUN_START_DELAY = dt.timedelta(minutes=5)


def clock_for(settings: Settings) -> Clock:
    if settings.clock in ("emulator", "replay"):
        assert settings.emulator_url
        return EmulatorClock(settings.emulator_url)
    return SystemClock()


def start_run(settings: Settings, clock: Clock, due: dt.datetime) -> None:
    """On the replay clock, a run starts when the scheduler would have started it.

    The simulated clock only moves forward: a backfill or rerun of an old date
    happens now, as it would in production, not back when the date was due.
    """
    if settings.clock != "replay":
        return
    assert isinstance(clock, EmulatorClock)
    at = calendar.as_local(due, dt.UTC) + RUN_START_DELAY
    if clock.now() < at:
        clock.set(at)


def services_for(
    settings: Settings, *, s3: Any | None = None, glue: Any | None = None,
    clock: Clock | None = None,
) -> Services:
    s3 = s3 if s3 is not None else aws.client("s3", settings)
    glue = glue if glue is not None else aws.client("glue", settings)
    return Services(
        settings=settings,
        clock=clock or clock_for(settings),
        s3=s3,
        catalog=GlueCatalog(glue, settings.glue_database, settings.bucket),
    )


def connector(config: registry.SspConfig, credentials: Credentials, services: Services,
              **options: Any) -> ReportConnector:
    """The SSP's connector on the services' settings and clock (``build_connector``)."""
    from ssp_revenue.ingest.connectors import build_connector

    return build_connector(config, credentials, services.settings, services.clock, **options)


def connectors_from_env(services: Services) -> Callable[[registry.SspConfig], ReportConnector]:
    """Connectors whose credentials come from the environment (``credentials.from_env``:
    an SSP_REVENUE_CONN_* variable, or the emulator's demo account): the CLI and the demo."""
    from ssp_revenue.ingest import credentials

    def make(config: registry.SspConfig) -> ReportConnector:
        return connector(config, credentials.from_env(config.name, services.settings), services)

    return make


def bootstrap(services: Services) -> None:
    """Bucket, Glue database and tables: idempotent, safe on every run."""
    store.ensure_bucket(services.s3, services.bucket, services.settings.region)
    path = services.settings.config_dir / "ssps.yaml"
    services.catalog.ensure_all([c.name for c in registry.load_registry(path)] if path.exists() else None)
