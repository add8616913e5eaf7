"""Sessions share one botocore loader, so a task's clients read no model file again."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ssp_revenue.operate import aws


def _clients(session: boto3.Session) -> Any:
    s3 = session.client("s3", endpoint_url="http://127.0.0.1:9", config=aws.RETRIES)
    session.client("glue", endpoint_url="http://127.0.0.1:9", config=aws.RETRIES)
    return s3


def _session() -> boto3.Session:
    return boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="ap-northeast-1")


def test_the_first_session_reads_the_models_and_later_ones_read_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    aws.model_loader.cache_clear()  # a process that has not loaded them yet
    loader = aws.model_loader()
    read: list[str] = []
    original = loader.file_loader.load_file

    def load_file(path: str) -> Any:
        read.append(path)
        return original(path)

    monkeypatch.setattr(loader.file_loader, "load_file", load_file)
    aws.preload_models()
    assert any("s3" in p for p in read) and any("glue" in p for p in read)
    before = len(read)
    s3 = _clients(aws.share_models(_session()))  # what a forked task process does
    assert len(read) == before
    assert s3.meta.endpoint_url == "http://127.0.0.1:9" and s3.meta.region_name == "ap-northeast-1"
    aws.model_loader.cache_clear()
