"""The embedded stack: idempotent up, stale stacks restarted, not reused."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import boto3
import pytest

from ssp_revenue.operate import stack

pytestmark = pytest.mark.integration


def test_up_is_idempotent_and_a_crashed_stack_is_restarted(tmp_path: Path) -> None:
    local = stack.LocalStack(tmp_path)
    try:
        first = local.up()
        assert local.up()["pids"] == first["pids"]  # healthy: reused
        saved = json.loads((tmp_path / "stack.json").read_text())
        assert set(saved) >= {"s3_endpoint", "emulator_url", "bucket", "glue_database", "region"}
        assert saved["s3_endpoint"].startswith("http://127.0.0.1:")

        os.kill(first["pids"]["moto"], signal.SIGKILL)  # crash one service
        time.sleep(0.3)
        assert not local.healthy()
        second = local.up()
        assert second["pids"]["moto"] != first["pids"]["moto"]
        assert local.healthy()
        s3 = boto3.client("s3", endpoint_url=second["s3_endpoint"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.list_buckets()  # the new moto server answers
    finally:
        local.down()
    assert not local.healthy()
    assert local.read() is None


def test_conditional_puts_are_enforced(stack_state: dict[str, object]) -> None:
    from ssp_revenue.lake import store

    s3 = boto3.client("s3", endpoint_url=str(stack_state["s3_endpoint"]), region_name="us-east-1")
    s3.create_bucket(Bucket="put-once")
    assert store.put_once(s3, "put-once", "k", b"1") is True
    assert store.put_once(s3, "put-once", "k", b"2") is False
    assert s3.get_object(Bucket="put-once", Key="k")["Body"].read() == b"1"
