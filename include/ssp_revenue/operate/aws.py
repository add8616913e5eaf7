"""boto3 clients from settings, for the CLI and tests (Airflow builds them from Connections)."""

from __future__ import annotations

import functools
from typing import Any

import boto3
import botocore
import botocore.loaders
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


@functools.lru_cache(maxsize=1)
def model_loader() -> botocore.loaders.Loader:
    """One botocore loader for every session of the process.

    Each new session parses the service models, endpoint rules and partitions
    again (S3's are megabytes of JSON): profiled under the CeleryExecutor, 80 % of
    building a task's S3 and Glue clients. A loader warmed in the Celery worker
    before it forks is inherited by every task process. The loader only reads
    the packaged JSON and caches it, so sharing it changes no client's behaviour."""
    return botocore.loaders.create_loader()


def share_models(session: boto3.Session) -> boto3.Session:
    """The session, reading models through the process's loader (before its first client)."""
    # boto3 keeps its botocore session as ``_session``; botocore's own API swaps the loader.
    session._session.register_component("data_loader", model_loader())
    return session


def preload_models(services: tuple[str, ...] = ("s3", "glue")) -> None:
    """Build one throwaway client per service so the shared loader holds all it reads.

    No request is made and no credentials are looked up (unsigned); the client is dropped."""
    session = share_models(boto3.Session(region_name="ap-northeast-1"))
    unsigned = RETRIES.merge(Config(signature_version=botocore.UNSIGNED))
    for service in services:
        session.client(service, config=unsigned)  # type: ignore[call-overload]
