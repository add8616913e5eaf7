"""The emulator's mutable world: simulated clock, seed, SSP profiles, faults, jobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import itertools
import threading
from collections import OrderedDict
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ssp_emulator.accounts import described_profiles
from ssp_emulator.faults import Fault, FaultBoard
from ssp_emulator.figures import (
    DEFAULT_PROFILES,
    SspProfile,
    business_figures,
    figures,
    totals,
)

# The fastest level: how hard an SSP compresses is its own business, and level 9 alone
# took 4.5 s of a 1M-row report (the benchmark would measure the emulator's gzip).
GZIP_LEVEL = 1


class ReportNotReady(Exception):
    pass


@dataclasses.dataclass
class Report:
    """A finished report as the SSP would serve it: bytes plus its stated totals."""

    ssp: str
    revenue_date: dt.date
    body: bytes
    totals: dict[str, int]
    made_at: dt.datetime


@dataclasses.dataclass
class Job:
    ssp: str
    report: Report
    polls_left: int


class EmulatorState:
    def __init__(self, seed: int = 1, now: dt.datetime | None = None,
                 s3_endpoint: str | None = None) -> None:
        self.s3_endpoint = s3_endpoint
        self.service_accounts: dict[str, Any] = {}
        self.lock = threading.RLock()
        self.seed = seed
        self.now = now or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        # The hand-made demo accounts, and one for each registry entry of a described style.
        self.profiles: dict[str, SspProfile] = {**described_profiles(), **DEFAULT_PROFILES}
        self.faults = FaultBoard()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.tokens: dict[str, tuple[str, dt.datetime]] = {}
        self.statement_plans: dict[tuple[str, str], dict[str, Any]] = {}  # (ssp, month) -> variant
        # The clock moves every simulated run, and each move re-delivers only what changed: what
        # the file-drop SSPs' bucket holds as this process put it (key -> the sha256 of the file,
        # for a manifest that of the data file it names), and the bucket's client.
        self.dropped: dict[str, str] = {}
        self.drop_client: Any = None
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):08d}"

    def remember_job(self, job_id: str, job: Job) -> None:
        with self.lock:
            self.jobs[job_id] = job
            while len(self.jobs) > 500:
                self.jobs.popitem(last=False)

    def profile(self, ssp: str) -> SspProfile:
        try:
            return self.profiles[ssp]
        except KeyError:
            raise KeyError(f"unknown ssp {ssp!r}") from None

    def truth(self, ssp: str, revenue_date: dt.date, at: dt.datetime | None = None) -> pa.Table:
        """What the SSP's figures for a *business* date are at ``at`` (re-bucketed if hourly)."""
        return business_figures(self.profile(ssp), revenue_date, self.seed, at or self.now)

    def served_table(
        self, ssp: str, revenue_date: dt.date
    ) -> tuple[pa.Table, dict[str, int], int | None]:
        """A daily report's rows as served now (content faults applied), or not ready."""
        profile = self.profile(ssp)
        if self.now < profile.available_at(revenue_date) or self.faults.take(
            ssp, "not_ready", revenue_date
        ):
            raise ReportNotReady(f"{ssp} {revenue_date}: data not ready")
        table = figures(profile, revenue_date, self.seed, self.now)
        return self.with_content_faults(ssp, revenue_date, table)

    def make_report(self, ssp: str, revenue_date: dt.date) -> Report:
        """Build the gzip CSV report the SSP serves now, with any content faults applied."""
        table, stated, bad_row = self.served_table(ssp, revenue_date)
        text = corrupt_csv_row(_csv(table), bad_row, column=-2)
        body = gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0)
        return Report(ssp, revenue_date, body, stated, self.now)

    def with_content_faults(
        self, ssp: str, revenue_date: dt.date, table: pa.Table, consume: bool = True
    ) -> tuple[pa.Table, dict[str, int], int | None]:
        """Apply the content faults switched on for (ssp, date): the served rows, the
        totals the SSP states (always the true ones), and a data row to corrupt, if any."""

        def take(kind: str) -> Fault | None:
            return self.faults.take(ssp, kind, revenue_date, consume=consume)

        stated = totals(table)
        if take("empty_day"):
            table = table.slice(0, 0)
            stated = totals(table)
        if take("duplicated_rows"):
            table = pa.concat_tables([table, table.slice(0, min(3, table.num_rows))])
        if take("wrong_currency"):
            table = table.set_column(
                table.schema.get_field_index("currency"),
                "currency",
                pc.if_else(pc.equal(table["currency"], "JPY"), "USD", "JPY"),
            )
        if take("renamed_column"):
            table = table.rename_columns(
                ["revenue" if n == "revenue_micros" else n for n in table.column_names]
            )
        malformed = take("malformed_rows")
        bad_row = int(malformed.params.get("row", 2)) if malformed else None
        return table, stated, bad_row

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)


def corrupt_csv_row(text: bytes, bad_row: int | None, column: int) -> bytes:
    """Put a malformed amount into data row ``bad_row`` (1-based) of a CSV body."""
    if bad_row is None:
        return text
    lines = text.split(b"\n")
    if 0 < bad_row < len(lines) - 1:
        cells = lines[bad_row].split(b",")
        cells[column] = b"12x45"
        lines[bad_row] = b",".join(cells)
    return b"\n".join(lines)


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="none"))
    return sink.getvalue()
