"""A pipeline run that kills itself (SIGKILL) at one step boundary: the test's victim.

Usage: python -m tests.reliability.crash_child '<json>' with bucket, database,
endpoint, emulator URL, region, SSP, date and the crash point. Only this process
is patched; the library has no crash hooks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from typing import Any

from ssp_revenue.core import registry
from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.connectors import RetryPolicy, build_connector
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.operate import runtime
from ssp_revenue.operate.pipeline import run_ssp

# point -> (client, operation, what the call touches, before or after it)
POINTS: dict[str, tuple[str, str, str, str]] = {
    "after_raw_landing": ("s3", "put_object", "raw/", "after"),
    "after_version_files": ("s3", "put_object", "tables/revenue/", "after"),
    "before_catalog_switch": ("glue", "partition", "revenue", "before"),
    "after_catalog_switch": ("glue", "partition", "revenue", "after"),
    "before_ledger_put": ("s3", "put_object", "ledger/finalized/", "before"),
    "after_ledger_put": ("s3", "put_object", "ledger/finalized/", "after"),
    "after_final_files": ("s3", "put_object", "tables/revenue_final/", "after"),
    "before_final_partition": ("glue", "partition", "revenue_final", "before"),
    "after_allocation_files": ("s3", "put_object", "tables/allocation_final/", "after"),
}


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(services: Any, point: str) -> None:
    client_name, operation, target, when = POINTS[point]
    client = services.s3 if client_name == "s3" else services.catalog.glue
    names = ["put_object"] if operation == "put_object" else ["create_partition", "update_partition"]
    for name in names:
        original = getattr(client, name)

        def wrapped(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            hit = (kwargs.get("Key", "").startswith(target) if client_name == "s3"
                   else kwargs.get("TableName") == target)
            if hit and when == "before":
                die()
            result = _original(*args, **kwargs)
            if hit:
                die()
            return result

        setattr(client, name, wrapped)


def main() -> None:
    spec = json.loads(sys.argv[1])
    settings = Settings(bucket=spec["bucket"], glue_database=spec["database"], region=spec["region"],
                        aws_endpoint=spec["endpoint"], emulator_url=spec["emulator_url"], clock="emulator")
    services = runtime.services_for(settings)
    if spec.get("point"):
        arm(services, spec["point"])
    config = registry.find(registry.load_registry(settings.config_dir / "ssps.yaml"), spec["ssp"])
    connector = build_connector(
        config, emulator_credentials(spec["ssp"], settings.emulator_url, settings.aws_endpoint),
        settings, services.clock, retry=RetryPolicy(attempts=2, initial=0.01, jitter=0.01))
    run_ssp(config, [dt.date.fromisoformat(spec["date"])], connector, services)


if __name__ == "__main__":
    main()
