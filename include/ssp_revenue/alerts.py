"""One alert per (SSP, revenue date, reason), however many runs see the problem.

The claim is a conditional put of a marker under ``alerts/sent/``: the first
run (or the winner of two racing runs) claims it and raises the alert; every
later run finds the marker and only logs. Delivery (local log, Slack, email)
is the Airflow notifier's job; ``AlertLog`` is the local sink.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from pathlib import Path
from typing import Any

from ssp_revenue import lake
from ssp_revenue.outcomes import Severity, StepOutcome


@dataclasses.dataclass(frozen=True)
class Alert:
    ssp: str
    revenue_date: dt.date
    reason: str
    step: str
    detail: str

    @classmethod
    def from_outcome(cls, outcome: StepOutcome) -> Alert:
        assert outcome.severity is Severity.ACTIONABLE
        reason = outcome.reason.value if outcome.reason else outcome.step
        return cls(outcome.ssp, outcome.revenue_date, reason, outcome.step, outcome.detail)

    @property
    def marker(self) -> str:
        return (
            f"alerts/sent/ssp={lake.partition_value(self.ssp)}/"
            f"revenue_date={self.revenue_date.isoformat()}/{lake.partition_value(self.reason)}.json"
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "ssp": self.ssp,
            "revenue_date": self.revenue_date.isoformat(),
            "reason": self.reason,
            "step": self.step,
            "detail": self.detail,
        }


class AlertLedger:
    """Exactly-once claims of alerts, kept in the lake bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def claim(self, alert: Alert, at: dt.datetime) -> bool:
        body = json.dumps({**alert.to_dict(), "claimed_at": at.isoformat()}, sort_keys=True)
        return lake.put_once(self.s3, self.bucket, alert.marker, body.encode(),
                             ContentType="application/json")

    def sent(self, ssp: str, revenue_date: dt.date) -> list[str]:
        prefix = f"alerts/sent/ssp={ssp}/revenue_date={revenue_date.isoformat()}/"
        return [k.rsplit("/", 1)[-1].removesuffix(".json")
                for k in lake.list_keys(self.s3, self.bucket, prefix)]


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
        lake.put_once(self.s3, self.bucket, key, lines.encode(), ContentType="application/x-ndjson")
        return key

    def read(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in sorted(lake.list_keys(self.s3, self.bucket, self.PREFIX)):
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
