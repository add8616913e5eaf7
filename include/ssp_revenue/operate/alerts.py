"""Where delivered notices are kept: the lake (shared by every worker) and a local file.

Which notices exist (an incident opened, an incident resolved) is decided by
``ssp_revenue.operate.incidents``; delivery to Slack and email is the Airflow notifier's.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from ssp_revenue.lake import store


class LakeAlertLog:
    """The shared sink: every delivered alert, kept in the lake whichever worker sent it.

    One object per delivery under ``alerts/log/alerted_on=D/`` (JSON lines), so
    workers never contend for a file and the history outlives any one machine.
    """

    PREFIX = "alerts/log/"

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def write(self, alerts: list[dict[str, Any]], at: dt.datetime) -> str:
        lines = "".join(json.dumps({**a, "alerted_at": at.isoformat()}, sort_keys=True) + "\n"
                        for a in alerts)
        stamp = at.astimezone(dt.UTC)
        key = (f"{self.PREFIX}alerted_on={stamp.date().isoformat()}/"
               f"{stamp.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:12]}.jsonl")
        store.put_once(self.s3, self.bucket, key, lines.encode(), ContentType="application/x-ndjson")
        return key

    def read(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in sorted(store.list_keys(self.s3, self.bucket, self.PREFIX)):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
            out.extend(json.loads(line) for line in body.splitlines() if line.strip())
        return out


class AlertLog:
    """A local copy: one JSON line per alert in a file (``SSP_REVENUE_ALERTS_LOG``)."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, alerts: list[dict[str, Any]], at: dt.datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            for alert in alerts:
                out.write(json.dumps({**alert, "alerted_at": at.isoformat()}, sort_keys=True) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
