"""The monthly close: one accounting CSV per month, from frozen and allocated figures only.

For month M, per (allocation target, SSP):
- ``frozen_jpy``: allocation_final of every revenue date in M;
- ``adjustments_jpy``: every adjustment batch *detected* during M (in the
  business zone), whatever its revenue date, split by the rules in effect on its
  revenue date at that date's FX rate (largest remainder per batch);
- ``trueup_jpy``: the month's statement true-up (allocation_trueup), once the
  SSP's statement for M is reconciled within tolerance;
- ``total_jpy`` = frozen_jpy + adjustments_jpy + trueup_jpy.

A batch whose revenue date is in a month with a true-up is not booked: that
month's statement already pays it (the true-up is paid - frozen). A month
closed before its statements arrived is reissued as they are booked.

The close refuses, listing every gap, while a date of M is not frozen or not
allocated. Its CSV is a pure function of the lake, so running it again gives the
same bytes. Issues are stored once under ``closes/month=M/issue=NNN/`` (CSV
first, the manifest last: a month is closed when its manifest exists). Closing a
closed month again returns the issue on record when the figures are the same;
different figures need ``reissue`` and become issue N+1, never an overwrite.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ssp_revenue.allocate import tables, trueup
from ssp_revenue.allocate.rules import allocate_day
from ssp_revenue.core import calendar
from ssp_revenue.core.calendar import Month as Month  # re-exported: callers name close.Month
from ssp_revenue.core.errors import PipelineError, Reason
from ssp_revenue.core.settings import Settings
from ssp_revenue.finalize import adjustments, freeze
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog

COLUMNS = ("target", "ssp", "frozen_jpy", "adjustments_jpy", "trueup_jpy", "total_jpy")
HEADER = """\
# ssp-revenue monthly accounting export for {month}
# One row per allocation target and SSP. Amounts are whole Japanese yen (integers).
# target: allocation target (media, partner or business unit), see allocation_targets.csv
# ssp: supply-side platform
# frozen_jpy: revenue frozen for revenue dates {first} to {last},
#   split by the allocation rules in effect on each date (allocation_final)
# adjustments_jpy: restatements detected during {month} (any revenue date),
#   split the same way and booked to {month}; none for a date whose month has
#   a true-up (its statement pays it)
# trueup_jpy: what the SSP's statement for {month} pays beyond frozen_jpy,
#   split in proportion to frozen_jpy (allocation_trueup); 0 until it is booked
# total_jpy: frozen_jpy + adjustments_jpy + trueup_jpy
# Rounding: per SSP and date (and per adjustment batch) the exact JPY amount is
#   rounded half-to-even, then split by the largest-remainder method.
"""

class NotClosable(PipelineError):
    reason = Reason.NOT_CLOSABLE

    def __init__(self, message: str, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(message + "".join(f"\n  {m}" for m in missing))


@dataclasses.dataclass(frozen=True)
class MonthFigures:
    """A month's figures, before they are written anywhere."""

    month: Month
    dates: list[dt.date]
    rows: list[dict[str, Any]]  # target, ssp, frozen_jpy, adjustments_jpy, trueup_jpy, total_jpy
    rules_versions: list[str]
    frozen_versions: dict[str, str]  # "ssp/date" -> frozen source version
    adjustment_batches: list[str]
    statements: dict[str, str] = dataclasses.field(default_factory=dict)  # ssp -> statement trued up

    def totals(self) -> dict[str, int]:
        return {c: sum(int(r[c]) for r in self.rows) for c in COLUMNS[2:]}

    def csv_bytes(self, bom: bool = False) -> bytes:
        buffer = io.StringIO()
        first, last = (self.dates[0], self.dates[-1]) if self.dates else (self.month.first, self.month.last)
        buffer.write(HEADER.format(month=self.month, first=first, last=last))
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.rows:
            writer.writerow([row[c] for c in COLUMNS])
        body = buffer.getvalue().encode("utf-8")
        return (b"\xef\xbb\xbf" + body) if bom else body


def parse_csv(body: bytes) -> list[dict[str, Any]]:
    """Rows of an accounting CSV (the report renders exactly these)."""
    text = body.decode("utf-8-sig")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return [
        {k: (int(v) if k.endswith("_jpy") else v) for k, v in row.items()}
        for row in csv.DictReader(lines)
    ]


def _yen_rows(table: pa.Table) -> Iterable[tuple[str, int]]:
    for row in table.select(["target", "revenue_jpy"]).to_pylist():
        yield row["target"], int(row["revenue_jpy"])


def batch_yen(
    batch: pa.Table, ssp: str, revenue_date: dt.date, currency: str, inputs: tables.AllocationInputs
) -> dict[str, int]:
    """One adjustment batch in whole yen per target: its revenue date's rules and rate."""
    rate = inputs.rates.rate(currency, revenue_date)
    return allocate_day(tables.by_ad_unit(batch, "revenue_delta"), ssp=ssp, day=revenue_date,
                        book=inputs.book, rate=rate, delivery=inputs.delivery, amount_column="revenue_delta")


def adjustments_detected(
    window: tuple[dt.datetime, dt.datetime], ssps: list[str], *, settings: Settings, s3: Any,
    catalog: GlueCatalog, earliest: dt.date,
) -> list[tuple[str, dt.date, int, pa.Table]]:
    """(ssp, revenue date, sequence, rows) of every batch detected in [start, end)."""
    found: list[tuple[str, dt.date, int, pa.Table]] = []
    wanted = [(p.ssp, dt.date.fromisoformat(p.revenue_date)) for p in catalog.partitions(adjustments.TABLE)]
    wanted = [(ssp, day) for ssp, day in wanted if ssp in ssps and day >= earliest]
    read = store.read_each(lambda pair: adjustments.read_batches(s3, settings.bucket, *pair), wanted)
    for (ssp, day), batches in zip(wanted, read, strict=True):
        for sequence in sorted(set(batches["sequence"].to_pylist())):
            rows = batches.filter(pc.equal(batches["sequence"], sequence))
            detected = rows["detected_at"][0].as_py()
            if window[0] <= detected < window[1]:
                found.append((ssp, day, sequence, rows))
    return found


def month_figures(
    month: Month, ssps: list[str], *, settings: Settings, s3: Any, catalog: GlueCatalog,
    inputs: tables.AllocationInputs,
) -> MonthFigures:
    """The month's figures; NotClosable lists every (SSP, date) not frozen or not allocated."""
    dates = month.dates(settings.start_date)
    missing: list[str] = []
    frozen: dict[tuple[str, str], int] = {}
    rules: set[str] = set()
    versions: dict[str, str] = {}
    frozen_days = {ssp: freeze.frozen_dates(s3, settings.bucket, ssp) for ssp in ssps}
    pairs = [(ssp, day) for ssp in ssps for day in dates if day in frozen_days[ssp]]
    read = store.read_each(lambda pair: tables.read_day(*pair, s3=s3, catalog=catalog), pairs)
    allocations = dict(zip(pairs, read, strict=True))
    for ssp in ssps:
        for day in dates:
            if day not in frozen_days[ssp]:
                missing.append(f"{ssp} {day}: not frozen")
                continue
            allocated = allocations[(ssp, day)]
            if allocated is None:
                missing.append(f"{ssp} {day}: frozen, not allocated")
                continue
            part, allocation = allocated
            rules.add(part.parameters.get("rules_version", ""))
            versions[f"{ssp}/{day}"] = part.parameters.get("source_version", "")
            for target, yen in _yen_rows(allocation):
                frozen[(target, ssp)] = frozen.get((target, ssp), 0) + yen
    if missing:
        raise NotClosable(f"{month} cannot be closed: {len(missing)} (SSP, date) pair(s) missing", missing)

    start = calendar.date_start(month.first, settings.tz)
    end = calendar.date_start(month.next().first, settings.tz)
    earliest = month.first - dt.timedelta(days=settings.adjustment_days + 3)
    booked: dict[tuple[str, str], int] = {}
    batches: list[str] = []
    problems: list[str] = []
    paid: dict[tuple[str, Month], trueup.Booked | None] = {}

    def trued_up(ssp: str, month: Month) -> trueup.Booked | None:
        if (ssp, month) not in paid:
            paid[(ssp, month)] = trueup.booked(month, ssp, s3=s3, catalog=catalog)
        return paid[(ssp, month)]

    for ssp, day, sequence, rows in adjustments_detected(
            (start, end), ssps, settings=settings, s3=s3, catalog=catalog, earliest=earliest):
        if trued_up(ssp, Month(day.year, day.month)) is not None:
            continue  # its month's statement pays it
        try:
            parts = batch_yen(rows, ssp, day, str(rows["currency"][0].as_py()), inputs)
        except (PipelineError, LookupError) as exc:
            problems.append(f"{ssp} {day} adjustment batch {sequence}: {exc}")
            continue
        batches.append(f"{ssp}/{day}/seq={sequence:06d}")
        for target, yen in parts.items():
            booked[(target, ssp)] = booked.get((target, ssp), 0) + yen
    if problems:
        raise NotClosable(f"{month} cannot be closed: adjustments cannot be allocated", problems)

    lines: dict[tuple[str, str], int] = {}
    statements: dict[str, str] = {}
    for ssp in ssps:
        found = trued_up(ssp, month)
        if found is not None:
            statements[ssp] = found.statement_id
            for target, yen in found.by_target.items():
                lines[(target, ssp)] = lines.get((target, ssp), 0) + yen
    rows = []
    for target, ssp in sorted(set(frozen) | set(booked) | set(lines)):
        f, a, t = frozen.get((target, ssp), 0), booked.get((target, ssp), 0), lines.get((target, ssp), 0)
        rows.append({"target": target, "ssp": ssp, "frozen_jpy": f, "adjustments_jpy": a, "trueup_jpy": t,
                     "total_jpy": f + a + t})
    return MonthFigures(month, dates, rows, sorted(rules), versions, batches, statements)


@dataclasses.dataclass(frozen=True)
class Issue:
    month: str
    issue: int
    state: str  # "closed", "already_closed", "reissued"
    csv: bytes
    manifest: dict[str, Any]
    key: str


def _prefix(month: Month) -> str:
    return f"closes/month={month}/"


def issues(s3: Any, bucket: str, month: Month) -> list[int]:
    """Issue numbers on record (those with a manifest)."""
    keys = store.list_keys(s3, bucket, _prefix(month))
    return sorted(int(k.split("issue=")[1][:3]) for k in keys if k.endswith("/manifest.json"))


def issue_key(month: Month, issue: int, name: str) -> str:
    return f"{_prefix(month)}issue={issue:03d}/{name}"


def read_issue(s3: Any, bucket: str, month: Month, issue: int) -> tuple[bytes, dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=issue_key(month, issue, "accounting.csv"))["Body"].read()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=issue_key(month, issue, "manifest.json"))
                          ["Body"].read())
    return body, manifest


def _manifest(found: MonthFigures, body: bytes, issue: int, now: dt.datetime,
              previous: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "month": str(found.month),
        "issue": issue,
        "file": "accounting.csv",
        "encoding": "utf-8 (no BOM; --bom adds one to the local copy only)",
        "sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body),
        "row_count": len(found.rows),
        "totals_jpy": found.totals(),
        "revenue_dates": [found.dates[0].isoformat(), found.dates[-1].isoformat()] if found.dates else [],
        "rules_versions": found.rules_versions,
        "frozen_versions": found.frozen_versions,
        "adjustment_batches": found.adjustment_batches,
        "statements": found.statements,
        "closed_at": now.isoformat(),
        "replaces_issue": previous["issue"] if previous else None,
        "replaces_sha256": previous["sha256"] if previous else None,
    }


def close_month(
    month: Month, ssps: list[str], *, settings: Settings, s3: Any, catalog: GlueCatalog,
    inputs: tables.AllocationInputs, now: dt.datetime, reissue: bool = False,
) -> Issue:
    """Close a month once; the same figures again return the issue on record."""
    found = month_figures(month, ssps, settings=settings, s3=s3, catalog=catalog, inputs=inputs)
    body = found.csv_bytes()
    bucket = settings.bucket
    on_record = issues(s3, bucket, month)
    previous: dict[str, Any] | None = None
    if on_record:
        last_body, previous = read_issue(s3, bucket, month, on_record[-1])
        if last_body == body:
            return Issue(str(month), on_record[-1], "already_closed", last_body, previous,
                         issue_key(month, on_record[-1], "accounting.csv"))
        if not reissue:
            changed = _differences(parse_csv(last_body), found.rows)
            raise NotClosable(
                f"{month} was closed as issue {on_record[-1]} and its figures have changed since; "
                "close it again with --reissue to publish a numbered reissue", changed)
    number = (on_record[-1] + 1) if on_record else 1
    csv_key = issue_key(month, number, "accounting.csv")
    if not store.put_once(s3, bucket, csv_key, body, ContentType="text/csv; charset=utf-8"):
        existing = s3.get_object(Bucket=bucket, Key=csv_key)["Body"].read()
        if existing != body:
            raise NotClosable(f"{csv_key} was written meanwhile with other figures; run the close again",
                              [csv_key])
    manifest = _manifest(found, body, number, now, previous)
    if not store.put_once(s3, bucket, issue_key(month, number, "manifest.json"),
                         json.dumps(manifest, indent=2, sort_keys=True).encode(),
                         ContentType="application/json"):
        _, manifest = read_issue(s3, bucket, month, number)
    return Issue(str(month), number, "reissued" if previous else "closed", body, manifest, csv_key)


def _differences(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    old = {(r["target"], r["ssp"]): int(r["total_jpy"]) for r in before}
    new = {(r["target"], r["ssp"]): int(r["total_jpy"]) for r in after}
    return [f"{t} {s}: total_jpy {old.get((t, s), 0)} -> {new.get((t, s), 0)}"
            for t, s in sorted(set(old) | set(new)) if old.get((t, s), 0) != new.get((t, s), 0)]
