"""Hooks: one external system each. SSP credentials from a Connection; AWS via the provider."""

from __future__ import annotations

import threading
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.sdk import BaseHook

from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.connectors import Credentials
from ssp_revenue.operate import aws


class SspConnectionHook(BaseHook):
    """An SSP account held in an Airflow Connection (never in code or logs).

    login = client id / API key / user; password = secret (masked by Airflow);
    extra ``base_url`` = the API root (or schema://host:port); other extras pass
    through to the connector. Rotating a secret is editing the Connection.
    """

    conn_name_attr = "ssp_conn_id"
    default_conn_name = "ssp_default"
    conn_type = "http"
    hook_name = "SSP report API"

    def __init__(self, ssp_conn_id: str) -> None:
        super().__init__()
        self.ssp_conn_id = ssp_conn_id

    def get_conn(self) -> Credentials:
        conn = self.get_connection(self.ssp_conn_id)
        extra: dict[str, Any] = dict(conn.extra_dejson or {})
        base_url = extra.pop("base_url", None)
        if not base_url:
            scheme = conn.schema or "https"
            host = conn.host or ""
            if "://" in host:
                base_url = host
            else:
                base_url = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        if not conn.login or not conn.password:
            raise ValueError(f"connection {self.ssp_conn_id!r} needs a login and a password")
        return Credentials(base_url=base_url, login=conn.login, secret=conn.password, extra=extra)


def aws_clients(settings: Settings, aws_conn_id: str = "aws_default") -> tuple[Any, Any]:
    """S3 and Glue clients through the Amazon provider (credentials and endpoint from the Connection).

    One hook and one boto3 session for both: the Connection is fetched from the
    api-server once and the credentials resolved once per task, not once per client.
    The pair is kept for the process, keyed by what it was built from: a new session
    parses botocore's S3 and Glue models again (0.1-0.3 s), which a task process pays
    once anyway but ``dag.test()``, every task in one process, paid per task."""
    hook = AwsBaseHook(aws_conn_id=aws_conn_id, region_name=settings.region, config=aws.RETRIES)
    session = aws.share_models(hook.get_session(region_name=settings.region))
    credentials = session.get_credentials()
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    endpoints = tuple(hook.conn_config.get_service_endpoint_url(service_name=s) for s in ("s3", "glue"))
    key = (aws_conn_id, settings.region, endpoints, repr(hook.verify), frozen)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS.clear()  # the Connection changed (a rotated secret): the old clients go
            _CLIENTS[key] = tuple(
                session.client(service,  # type: ignore[call-overload]
                               endpoint_url=endpoint, config=aws.RETRIES, verify=hook.verify)
                for service, endpoint in zip(("s3", "glue"), endpoints, strict=True))
        s3, glue = _CLIENTS[key]
    return s3, glue


# boto3 clients are thread-safe; the key holds everything a client was built from.
_CLIENTS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
_CLIENTS_LOCK = threading.Lock()
