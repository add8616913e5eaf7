"""SSP credentials outside Airflow (CLI runs): from the environment, or the local emulator.

Inside Airflow they come from one Connection per SSP (plugins/); here, from
``SSP_REVENUE_CONN_<SSP>`` holding JSON ``{"base_url", "login", "secret", "extra"}``.
Against the local stack, the emulator's own demo credentials are used.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping

from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.connectors import Credentials


def from_env(ssp: str, settings: Settings, environ: Mapping[str, str] | None = None) -> Credentials:
    """Credentials for a CLI run: the environment's, else the local emulator's demo account.

    Raises:
        KeyError: neither names the SSP.
    """
    env = os.environ if environ is None else environ
    raw = env.get(f"SSP_REVENUE_CONN_{ssp.upper()}")
    if raw:
        data = json.loads(raw)
        return Credentials(
            base_url=data["base_url"], login=data["login"], secret=data["secret"],
            extra=data.get("extra") or {},
        )
    if settings.emulator_url:
        return emulator_credentials(ssp, settings.emulator_url, settings.aws_endpoint)
    raise KeyError(f"no credentials for ssp {ssp!r}: set SSP_REVENUE_CONN_{ssp.upper()}")


def emulator_credentials(ssp: str, emulator_url: str, s3_endpoint: str | None = None) -> Credentials:
    """The emulator's demo account for an SSP, asked of the emulator over HTTP.

    The library never imports the emulator (a production worker does not carry it);
    it serves its accounts as Connection-shaped JSON instead.

    Raises:
        KeyError: the emulator does not emulate this SSP.
    """
    url = f"{emulator_url.rstrip('/')}/_control/credentials/{urllib.parse.quote(ssp)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310  # nosec B310 - loopback emulator
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise KeyError(f"no credentials for ssp {ssp!r}: the emulator at {emulator_url} does not "
                           f"emulate it; set SSP_REVENUE_CONN_{ssp.upper()}") from exc
        raise
    base_url = data["base_url"]
    if data.get("extra", {}).get("bucket") and s3_endpoint:
        base_url = s3_endpoint  # a file drop: the bucket lives behind the lake's S3 endpoint
    return Credentials(base_url=base_url, login=data["login"], secret=data["secret"],
                       extra=data.get("extra") or {})


def emulated_ssps(emulator_url: str) -> list[str]:
    """The SSPs the emulator at ``emulator_url`` serves demo accounts for."""
    url = f"{emulator_url.rstrip('/')}/_control/health"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310  # nosec B310 - loopback emulator
        return sorted(json.loads(resp.read())["ssps"])
