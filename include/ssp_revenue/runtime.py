"""Assemble a step's inputs (settings, clock, clients) at the edge, once."""

from __future__ import annotations

from typing import Any

from ssp_revenue import aws, lake
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.clock import Clock, EmulatorClock, SystemClock
from ssp_revenue.pipeline import Services
from ssp_revenue.settings import Settings


def clock_for(settings: Settings) -> Clock:
    if settings.clock == "emulator":
        assert settings.emulator_url
        return EmulatorClock(settings.emulator_url)
    return SystemClock()


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


def bootstrap(services: Services) -> None:
    """Bucket, Glue database and tables: idempotent, safe on every run."""
    lake.ensure_bucket(services.s3, services.bucket, services.settings.region)
    services.catalog.ensure_all()
