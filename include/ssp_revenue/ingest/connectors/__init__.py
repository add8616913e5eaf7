"""One module per SSP report-API style; ``STYLES`` maps a registry style to its connector."""

from __future__ import annotations

from ssp_revenue.ingest.connectors.async_job import AsyncJobConnector
from ssp_revenue.ingest.connectors.base import (
    Credentials,
    FetchedReport,
    ParsedReport,
    ReportConnector,
    RetryPolicy,
)
from ssp_revenue.ingest.connectors.file_drop import FileDropConnector
from ssp_revenue.ingest.connectors.jp_csv import JpCsvConnector
from ssp_revenue.ingest.connectors.rest_json import RestJsonConnector
from ssp_revenue.ingest.connectors.service_account_job import ServiceAccountJobConnector

STYLES: dict[str, type[ReportConnector]] = {
    AsyncJobConnector.style: AsyncJobConnector,
    RestJsonConnector.style: RestJsonConnector,
    JpCsvConnector.style: JpCsvConnector,
    FileDropConnector.style: FileDropConnector,
    ServiceAccountJobConnector.style: ServiceAccountJobConnector,
}


def connector_class(style: str) -> type[ReportConnector]:
    try:
        return STYLES[style]
    except KeyError:
        raise KeyError(f"unknown report style {style!r}; known: {sorted(STYLES)}") from None


__all__ = [
    "STYLES",
    "Credentials",
    "FetchedReport",
    "ParsedReport",
    "ReportConnector",
    "RetryPolicy",
    "connector_class",
]
