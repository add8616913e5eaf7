"""The emulator's mutable world: simulated clock, seed, SSP profiles, faults, jobs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import itertools
import threading
from collections import OrderedDict

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ssp_revenue.emulator.faults import Fault, FaultBoard
from ssp_revenue.emulator.figures import DEFAULT_PROFILES, SspProfile, figures, totals


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
    def __init__(self, seed: int = 1, now: dt.datetime | None = None) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.now = now or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.profiles: dict[str, SspProfile] = dict(DEFAULT_PROFILES)
        self.faults = FaultBoard()
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.tokens: dict[str, tuple[str, dt.datetime]] = {}
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
        return figures(self.profile(ssp), revenue_date, self.seed, at or self.now)

    def make_report(self, ssp: str, revenue_date: dt.date) -> Report:
        """Build the report the SSP serves now, with any content faults applied."""
        profile = self.profile(ssp)
        if self.now < profile.available_at(revenue_date) or self.faults.take(
            ssp, "not_ready", revenue_date
        ):
            raise ReportNotReady(f"{ssp} {revenue_date}: data not ready")
        table = self.truth(ssp, revenue_date)
        stated = totals(table)
        if self.faults.take(ssp, "empty_day", revenue_date):
            table = table.slice(0, 0)
            stated = totals(table)
        if self.faults.take(ssp, "duplicated_rows", revenue_date):
            table = pa.concat_tables([table, table.slice(0, min(3, table.num_rows))])
        if self.faults.take(ssp, "wrong_currency", revenue_date):
            table = table.set_column(
                table.schema.get_field_index("currency"),
                "currency",
                pc.if_else(pc.equal(table["currency"], "JPY"), "USD", "JPY"),
            )
        if self.faults.take(ssp, "renamed_column", revenue_date):
            table = table.rename_columns(
                ["revenue" if n == "revenue_micros" else n for n in table.column_names]
            )
        text = _csv(table)
        malformed = self.faults.take(ssp, "malformed_rows", revenue_date)
        if malformed:
            lines = text.split(b"\n")
            bad_row = int(malformed.params.get("row", 2))
            if 0 < bad_row < len(lines) - 1:
                cells = lines[bad_row].split(b",")
                cells[-2] = b"12x45"
                lines[bad_row] = b",".join(cells)
            text = b"\n".join(lines)
        body = gzip.compress(text, mtime=0)
        return Report(ssp, revenue_date, body, stated, self.now)

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)


def _csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="none"))
    return sink.getvalue()
