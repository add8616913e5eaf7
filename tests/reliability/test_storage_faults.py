"""S3 and Glue throttling and 5xx, injected through botocore's event hooks on the real clients.

A ``before-send`` handler answers chosen calls with an error response instead of
sending them to moto. Transient faults are retried by the clients and the run
publishes as if nothing happened; a fault that does not go away fails the step
(classified, not crashed) and the previous version stays live for readers.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from ssp_revenue.core import calendar, registry
from ssp_revenue.operate import aws, runtime
from ssp_revenue.operate.pipeline import run_ssp
from tests.integration.conftest import Lake

pytestmark = pytest.mark.integration
SSP = "adpulse"
DAY = dt.date(2026, 11, 5)

S3_SLOWDOWN = (503, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
S3_INTERNAL = (500, b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>")
GLUE_THROTTLE = (400, b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')
GLUE_INTERNAL = (500, b'{"__type": "InternalServiceException", "message": "Internal error"}')


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Any:
        yield self._body.read()


class Faults:
    """Fail the next ``times`` calls of an operation that match ``when`` (``times=-1``: always)."""

    def __init__(self) -> None:
        self.injected: dict[str, int] = {}
        self.remaining: dict[str, int] = {}

    def add(self, client: Any, event: str, error: tuple[int, bytes], times: int,
            when: Callable[[Any], bool] = lambda request: True, label: str | None = None) -> None:
        name = label or event
        self.remaining[name] = times
        self.injected[name] = 0

        def handler(request: Any, **_: Any) -> AWSResponse | None:
            if self.remaining[name] == 0 or not when(request):
                return None
            self.remaining[name] -= 1
            self.injected[name] += 1
            status, body = error
            headers = {"Content-Type": "application/xml" if body.startswith(b"<") else "application/x-amz-json-1.1"}
            return AWSResponse(request.url, status, headers, _Raw(body))

        client.meta.events.register(event, handler)


def _header(request: Any, name: str) -> str:
    value = request.headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def run(env: Lake, emulator: Any, at: dt.datetime) -> dict[str, Any]:
    emulator.set_clock(at)
    return run_ssp(registry.find(env.registry, SSP), [DAY], env.connector(ssp=SSP), env.services)


def live(env: Lake) -> tuple[str, Decimal]:
    part = env.services.catalog.get_partition("revenue", DAY.isoformat(), SSP)
    assert part is not None
    rows = env.engine().query(f"SELECT count(*), sum(revenue) FROM revenue WHERE ssp = '{SSP}'").rows
    assert rows[0][0] == int(part.parameters["row_count"])
    return part.parameters["source_version"], rows[0][1]


def test_transient_throttling_and_5xx_are_retried_and_the_run_publishes(
    lake_env: Lake, emulator: Any
) -> None:
    env = lake_env
    faults = Faults()
    s3, glue = env.services.s3, env.services.catalog.glue
    faults.add(s3, "before-send.s3.PutObject", S3_SLOWDOWN, 2,
               lambda r: "/tables/revenue/" in r.url)
    faults.add(s3, "before-send.s3.GetObject", S3_INTERNAL, 2)
    faults.add(s3, "before-send.s3.GetObject", S3_SLOWDOWN, 1, label="footer read",
               when=lambda r: _header(r, "Range").startswith("bytes=-"))
    faults.add(glue, "before-send.glue.GetPartition", GLUE_THROTTLE, 2)
    faults.add(glue, "before-send.glue.CreatePartition", GLUE_INTERNAL, 1)
    cut = calendar.cutoff(DAY, env.settings.tz, env.settings.freeze_hours)
    job = run(env, emulator, cut - dt.timedelta(hours=30))
    assert [o["severity"] for o in job["outcomes"]] == ["ok", "ok", "ok"], job["outcomes"]
    assert all(n > 0 for n in faults.injected.values()), faults.injected
    version, _ = live(env)
    assert job["published"][0]["version"] == version


def with_retry_budget(env: Lake, attempts: int) -> Lake:
    """The lake's clients with the production retry Config but fewer attempts: a fault that
    never goes away outlasts any budget, and botocore's backoff waits out each one for real
    (8 attempts took ~2 minutes of this test)."""
    config = aws.RETRIES.merge(Config(retries={"max_attempts": attempts, "mode": "adaptive"}))
    env.services = runtime.services_for(env.settings, s3=aws.client("s3", env.settings, config),
                                        glue=aws.client("glue", env.settings, config))
    return env


def test_a_fault_that_persists_fails_the_step_and_the_previous_version_stays(
    lake_env: Lake, emulator: Any
) -> None:
    env = with_retry_budget(lake_env, 3)
    cut = calendar.cutoff(DAY, env.settings.tz, env.settings.freeze_hours)
    run(env, emulator, cut - dt.timedelta(hours=30))
    before = live(env)

    faults = Faults()
    # The restated figures' new version can never be written; then the switch is throttled for good.
    faults.add(env.services.s3, "before-send.s3.PutObject", S3_SLOWDOWN, -1,
               lambda r: "/tables/revenue/" in r.url)
    job = run(env, emulator, cut - dt.timedelta(hours=5))
    failed = [o for o in job["outcomes"] if o["step"] == "publish"]
    assert [(o["severity"], o["reason"]) for o in failed] == [("converging", "storage_error")]
    assert live(env) == before

    faults.add(env.services.catalog.glue, "before-send.glue.UpdatePartition", GLUE_THROTTLE, -1)
    faults.remaining["before-send.s3.PutObject"] = 0
    job = run(env, emulator, cut - dt.timedelta(hours=4))
    failed = [o for o in job["outcomes"] if o["step"] == "publish"]
    assert [(o["severity"], o["reason"]) for o in failed] == [("converging", "storage_error")]
    assert live(env) == before, "a version whose switch failed is never half-visible"

    faults.remaining["before-send.glue.UpdatePartition"] = 0
    job = run(env, emulator, cut - dt.timedelta(hours=3))
    assert live(env) != before and live(env)[0] == job["published"][0]["version"]
