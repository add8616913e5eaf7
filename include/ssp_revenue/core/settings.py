"""Settings from ``SSP_REVENUE_*`` environment variables (or ``.local/stack.json``).

Production points these at real AWS; the local stack's addresses are filled in
from ``.local/stack.json`` when ``SSP_REVENUE_STACK_FILE`` names it (the CLI and
the test fixtures do).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

PREFIX = "SSP_REVENUE_"


@dataclasses.dataclass(frozen=True)
class Settings:
    bucket: str = "ssp-revenue"
    glue_database: str = "ssp_revenue"
    region: str = "ap-northeast-1"
    aws_endpoint: str | None = None
    business_tz: str = "Asia/Tokyo"
    freeze_hours: int = 60
    refetch_days: int = 7
    grace_hours: int = 24
    adjustment_days: int = 45
    restatement_alert_jpy: int = 1_000_000
    restatement_alert_pct: float = 5.0
    # Revenue dates before this are out of scope (the pipeline's go-live): never
    # fetched, never frozen, so history it never saw raises no late-freeze alerts.
    start_date: dt.date | None = None
    # The last revenue date the scheduler makes a run for (an account retired, a
    # bounded replay); none: no end.
    end_date: dt.date | None = None
    # Day of the month (business zone) on which the previous month is closed.
    close_day: int = 3
    # How many ended months the statements run reconciles each day (a correction
    # or a late statement for an older month is loaded with ``statement load``).
    statement_months: int = 3
    # Airflow catchup for the daily DAG: off, since each run re-fetches every date
    # still due and missed intervals need no runs of their own.
    catchup: bool = False
    # Chance runs per (SSP, date) between the SSP's available_after and its cutoff,
    # besides the daily runs (ssp_revenue.operate.schedule).
    fetch_chances: int = 3
    # How long a superseded version or compacted-away file stays for readers already
    # running (longer than the longest Athena query), and how far back --as-of reaches.
    reader_grace_days: int = 7
    # delete: vacuum deletes; tag: it tags, and an S3 lifecycle rule expires the tagged objects.
    vacuum_mode: str = "delete"
    # Between a failed task's tries.
    retry_delay_seconds: int = 300
    # system: wall time. emulator: the emulator's simulated clock, moved by the
    # caller. replay: the same clock, moved forward by each run to the moment the
    # scheduler would have started it (a real scheduler replaying past dates).
    clock: str = "system"
    emulator_url: str | None = None
    athena_workgroup: str | None = None
    athena_output: str | None = None
    config_dir: Path = dataclasses.field(
        default_factory=lambda: Path(__file__).resolve().parents[2] / "config"
    )
    local_dir: Path = dataclasses.field(default_factory=lambda: Path(".local"))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business_tz)

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(hours=self.grace_hours)

    @property
    def reader_grace(self) -> dt.timedelta:
        return dt.timedelta(days=self.reader_grace_days)

    @property
    def uses_athena(self) -> bool:
        return bool(self.athena_workgroup and self.athena_output)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        stack_file = env.get(PREFIX + "STACK_FILE")
        if stack_file and Path(stack_file).exists():
            stack = json.loads(Path(stack_file).read_text())
            values.update(
                aws_endpoint=stack["s3_endpoint"],
                emulator_url=stack["emulator_url"],
                bucket=stack["bucket"],
                glue_database=stack["glue_database"],
                region=stack["region"],
                local_dir=Path(stack_file).resolve().parent,
            )
        for field in dataclasses.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            if field.name in ("freeze_hours", "refetch_days", "grace_hours", "adjustment_days",
                              "restatement_alert_jpy", "close_day", "retry_delay_seconds",
                              "fetch_chances", "reader_grace_days", "statement_months"):
                values[field.name] = int(raw)
            elif field.name == "restatement_alert_pct":
                values[field.name] = float(raw)
            elif field.name in ("start_date", "end_date"):
                values[field.name] = dt.date.fromisoformat(raw)
            elif field.name == "catchup":
                values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif field.name in ("config_dir", "local_dir"):
                values[field.name] = Path(raw)
            else:
                values[field.name] = raw
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        ZoneInfo(self.business_tz)  # raises on an unknown zone
        if self.freeze_hours <= 0:
            raise ValueError(f"{PREFIX}FREEZE_HOURS must be positive, got {self.freeze_hours}")
        if self.grace_hours < 0 or self.adjustment_days < 0:
            raise ValueError(f"{PREFIX}GRACE_HOURS and {PREFIX}ADJUSTMENT_DAYS must not be negative")
        if self.refetch_days <= 0:
            raise ValueError(f"{PREFIX}REFETCH_DAYS must be positive, got {self.refetch_days}")
        if not 0 <= self.fetch_chances <= 12:
            raise ValueError(f"{PREFIX}FETCH_CHANCES must be 0..12, got {self.fetch_chances}")
        if not 1 <= self.close_day <= 28:
            raise ValueError(f"{PREFIX}CLOSE_DAY must be 1..28, got {self.close_day}")
        if self.reader_grace_days < 1:
            raise ValueError(f"{PREFIX}READER_GRACE_DAYS must be at least 1, got {self.reader_grace_days}")
        if self.vacuum_mode not in ("delete", "tag"):
            raise ValueError(f"{PREFIX}VACUUM_MODE must be 'delete' or 'tag', got {self.vacuum_mode!r}")
        if self.clock not in ("system", "emulator", "replay"):
            raise ValueError(f"{PREFIX}CLOCK must be 'system', 'emulator' or 'replay', got {self.clock!r}")
        if self.clock in ("emulator", "replay") and not self.emulator_url:
            raise ValueError(f"{PREFIX}CLOCK={self.clock} needs {PREFIX}EMULATOR_URL (or a stack file)")
