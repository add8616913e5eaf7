"""boto3 clients from settings, for the CLI and tests (Airflow builds them from Connections)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from ssp_revenue.settings import Settings

_RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"})


def client(service: str, settings: Settings) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint,
        config=_RETRIES,
    )
