"""boto3 clients from settings, for the CLI and tests (Airflow builds them from Connections)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from ssp_revenue.core.settings import Settings

# Throttling and 5xx from S3 and Glue are retried with backoff before a step gives up
# (tests/reliability/test_storage_faults.py); the Airflow hooks use the same Config.
# The pool holds as many connections as the widest fan-out (the local engine's 16
# object copies, listings side by side), so none is opened and thrown away.
RETRIES = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=32)


def client(service: str, settings: Settings, config: Config = RETRIES) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint,
        config=config,
    )
