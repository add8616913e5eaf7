"""SSP credentials outside Airflow (CLI runs): from the environment, or the local emulator.

Inside Airflow they come from one Connection per SSP (plugins/); here, from
``SSP_REVENUE_CONN_<SSP>`` holding JSON ``{"base_url", "login", "secret", "extra"}``.
Against the local stack, the emulator's own demo credentials are used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from ssp_revenue.connectors import Credentials
from ssp_revenue.emulator.figures import DEFAULT_PROFILES
from ssp_revenue.settings import Settings


def from_env(ssp: str, settings: Settings, environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    raw = env.get(f"SSP_REVENUE_CONN_{ssp.upper()}")
    if raw:
        data = json.loads(raw)
        return Credentials(
            base_url=data["base_url"], login=data["login"], secret=data["secret"],
            extra=data.get("extra") or {},
        )
    if settings.emulator_url and ssp in DEFAULT_PROFILES:
        return emulator_credentials(ssp, settings.emulator_url, settings.aws_endpoint)
    raise KeyError(f"no credentials for ssp {ssp!r}: set SSP_REVENUE_CONN_{ssp.upper()}")


def emulator_credentials(ssp: str, emulator_url: str, s3_endpoint: str | None = None) -> Credentials:
    """The emulator's demo account for an SSP (file-drop SSPs: the local drop bucket)."""
    profile = DEFAULT_PROFILES[ssp]
    if profile.style == "service_account_job":
        import json as json_module
        import urllib.request

        url = f"{emulator_url.rstrip('/')}/_control/service-account/{ssp}"
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310  # nosec B310 - loopback emulator
            key_file = json_module.loads(resp.read())
        return Credentials(base_url=emulator_url, login=key_file["client_email"],
                           secret=key_file["private_key"], extra={"network_code": "1"})
    if profile.style == "file_drop":
        return Credentials(base_url=s3_endpoint or "", login=profile.client_id,
                           secret=profile.client_secret,
                           extra={"bucket": "ssp-drop", "prefix": f"{ssp}/daily/"})
    return Credentials(base_url=emulator_url, login=profile.client_id, secret=profile.client_secret)
