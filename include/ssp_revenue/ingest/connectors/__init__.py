"""The report styles: one Python module per style a description cannot say (``STYLES``), and the
styles described in YAML (include/config/styles/, ``core.styles``), each read by ``declarative``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

from ssp_revenue.core import styles
from ssp_revenue.ingest.connectors.async_job import AsyncJobConnector
from ssp_revenue.ingest.connectors.base import (
    Credentials,
    FetchedReport,
    ParsedReport,
    ReportConnector,
    RetryPolicy,
)
from ssp_revenue.ingest.connectors.declarative import connector_for
from ssp_revenue.ingest.connectors.file_drop import FileDropConnector
from ssp_revenue.ingest.connectors.service_account_job import ServiceAccountJobConnector

if TYPE_CHECKING:
    from ssp_revenue.core.clock import Clock
    from ssp_revenue.core.registry import SspConfig
    from ssp_revenue.core.settings import Settings

STYLES: dict[str, type[ReportConnector]] = {
    AsyncJobConnector.style: AsyncJobConnector,
    FileDropConnector.style: FileDropConnector,
    ServiceAccountJobConnector.style: ServiceAccountJobConnector,
}


def known_styles() -> list[str]:
    """Every style a registry entry may name: the Python ones and the described ones."""
    return sorted({*STYLES, *styles.described_styles()})


def connector_class(style: str) -> type[ReportConnector]:
    """The connector of a style: its Python class, else the class of its description.

    Raises:
        KeyError: no such style.
        StyleError: its description is invalid (with file and line).
    """
    if style in STYLES:
        return STYLES[style]
    described = styles.load_style(style)
    if described is None:
        raise KeyError(f"unknown report style {style!r}; known: {known_styles()}")
    return connector_for(described)


def build_connector(config: SspConfig, credentials: Credentials, settings: Settings, clock: Clock, *,
                    retry: RetryPolicy | None = None, session: requests.Session | None = None,
                    timeout: float | None = None) -> ReportConnector:
    """The SSP's connector: the one place one is assembled (tasks, CLI, replay, tests, benchmarks).

    The business time zone comes from settings here and nowhere below them.

    Raises:
        KeyError: the registry names a style no connector implements.
    """
    extra: dict[str, float] = {} if timeout is None else {"timeout": timeout}
    return connector_class(config.style)(config, credentials, clock=clock, retry=retry, session=session,
                                         business_tz=settings.business_tz, **extra)


__all__ = [
    "STYLES",
    "Credentials",
    "FetchedReport",
    "ParsedReport",
    "ReportConnector",
    "RetryPolicy",
    "build_connector",
    "connector_class",
    "known_styles",
]
