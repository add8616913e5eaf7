"""Restatements after the freeze become adjustment rows; revenue_final is never touched.

Each batch is the per-key delta from the previous state (the frozen version, or
the last adjusted version) to the version now live in ``revenue``, so frozen
figures plus all adjustments to date equal the latest figures. Batches are
numbered; batch N is written with a conditional put, so the same restatement
seen twice (or by two racing runs) is recorded once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import io
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ssp_revenue.core import schema
from ssp_revenue.core.errors import FreezeProblem, Reason
from ssp_revenue.core.settings import Settings
from ssp_revenue.finalize.freeze import LedgerEntry
from ssp_revenue.lake import logs, publish, store
from ssp_revenue.lake.catalog import GlueCatalog

TABLE = "revenue_adjustments"
_WIDE = pa.decimal128(38, schema.MONEY_SCALE)


@dataclasses.dataclass(frozen=True)
class AdjustmentResult:
    ssp: str
    revenue_date: dt.date
    sequence: int | None  # None: nothing new to record
    rows: int
    revenue_delta: decimal.Decimal  # of this batch
    drift_from_frozen: decimal.Decimal  # live total minus frozen total


def _batch_key(ssp: str, revenue_date: dt.date, sequence: int) -> str:
    return f"{store.partition_prefix(TABLE, ssp, revenue_date)}seq={sequence:06d}.parquet"


def read_batches(s3: Any, bucket: str, ssp: str, revenue_date: dt.date) -> pa.Table:
    # Not compacted: a batch's sequence is claimed by its key, so its files stay where they were put.
    prefix = store.partition_prefix(TABLE, ssp, revenue_date)
    return store.read_parquet_files(s3, bucket, schema.REVENUE_ADJUSTMENTS, logs.files(s3, bucket, prefix))


def delta(old: pa.Table, new: pa.Table) -> pa.Table:
    """Per grain key: new minus old; keys that appeared or vanished included; zero rows dropped."""
    keys = list(schema.GRAIN)
    measures = ["impressions", "clicks", "revenue"]

    def side(table: pa.Table, suffix: str) -> pa.Table:
        cols = {k: table[k] for k in keys}
        for m in measures:
            cols[m + suffix] = table[m]
        cols["currency" + suffix] = table["currency"]
        return pa.table(cols)

    joined = side(old, "_old").join(side(new, "_new"), keys=keys, join_type="full outer")
    out = {k: joined[k] for k in keys}
    for m in measures:
        zero = pa.scalar(0, pa.int64()) if m != "revenue" else pa.scalar(decimal.Decimal(0), schema.MONEY)
        new_values = pc.fill_null(joined[m + "_new"], zero)
        old_values = pc.fill_null(joined[m + "_old"], zero)
        difference = pc.subtract_checked(new_values, old_values)
        out[m + "_delta"] = difference if m != "revenue" else difference.cast(schema.MONEY)
    out["currency"] = pc.coalesce(joined["currency_new"], joined["currency_old"])
    result = pa.table(out)
    changed = pc.or_(
        pc.or_(pc.not_equal(result["impressions_delta"], 0), pc.not_equal(result["clicks_delta"], 0)),
        pc.not_equal(result["revenue_delta"], pa.scalar(decimal.Decimal(0), schema.MONEY)),
    )
    result = result.filter(changed)
    return result.sort_by([(k, "ascending") for k in keys])


def reconcile(
    entry: LedgerEntry,
    *,
    settings: Settings,
    s3: Any,
    catalog: GlueCatalog,
    now: dt.datetime,
) -> AdjustmentResult:
    """Record the difference between the live version and the last recorded state, once."""
    bucket = catalog.bucket
    ssp, day = entry.ssp, entry.revenue_date
    live = catalog.get_partition(publish.TABLE, day.isoformat(), ssp)
    live_version = publish.version_of(live.location) if live else None
    batches = read_batches(s3, bucket, ssp, day)
    sequence = int(pc.max(batches["sequence"]).as_py()) if batches.num_rows else 0
    last_version = entry.version
    if batches.num_rows:
        last = batches.filter(pc.equal(batches["sequence"], sequence))
        last_version = str(last["source_version"][0])
    frozen_total = decimal.Decimal(entry.revenue)
    if live is None or live_version is None or live_version == last_version:
        live_total = decimal.Decimal(live.parameters.get("revenue_total", entry.revenue)) if live \
            else frozen_total
        return AdjustmentResult(ssp, day, None, 0, decimal.Decimal(0), live_total - frozen_total)

    previous = publish.read_version(s3, bucket, ssp, day, last_version)
    current = publish.read_version(s3, bucket, ssp, day, live_version)
    changes = delta(previous, current)
    next_sequence = sequence + 1
    n = changes.num_rows
    rows = changes.append_column("sequence", pa.repeat(pa.scalar(next_sequence, pa.int64()), n))
    for name, value, kind in (
        ("detected_at", now, pa.timestamp("us", tz="UTC")),
        ("frozen_version", entry.version, pa.string()),
        ("previous_version", last_version, pa.string()),
        ("source_version", live_version, pa.string()),
    ):
        rows = rows.append_column(name, pa.repeat(pa.scalar(value, kind), n))
    rows = rows.select(schema.REVENUE_ADJUSTMENTS.names).cast(schema.REVENUE_ADJUSTMENTS)
    if n == 0:
        # Same figures under another version (cannot happen with content hashes, but be safe):
        # record a marker row-less batch so the chain moves on.
        rows = schema.REVENUE_ADJUSTMENTS.empty_table()
    sink = io.BytesIO()
    pq.write_table(rows, sink)
    written = store.put_once(s3, bucket, _batch_key(ssp, day, next_sequence), sink.getvalue())
    prefix = store.partition_prefix(TABLE, ssp, day)
    if catalog.get_partition(TABLE, day.isoformat(), ssp) is None:
        catalog.set_partition(TABLE, day.isoformat(), ssp, store.s3_uri(bucket, prefix))
    batch_delta = pc.sum(changes["revenue_delta"]).as_py() if n else decimal.Decimal(0)
    drift = sum_revenue(current) - frozen_total
    return AdjustmentResult(ssp, day, next_sequence if written else None, n if written else 0,
                            batch_delta or decimal.Decimal(0), drift)


def sum_revenue(table: pa.Table) -> decimal.Decimal:
    value = pc.sum(table["revenue"].cast(_WIDE)).as_py()
    return value if value is not None else decimal.Decimal(0)


def check_threshold(result: AdjustmentResult, entry: LedgerEntry, settings: Settings) -> None:
    """A restatement past the threshold (JPY amount, or percent of the frozen day) is actionable."""
    frozen_total = decimal.Decimal(entry.revenue)
    drift = abs(result.drift_from_frozen)
    pct = (drift / frozen_total * 100) if frozen_total else decimal.Decimal(0)
    over_amount = entry.currency == "JPY" and drift >= settings.restatement_alert_jpy
    over_pct = pct >= decimal.Decimal(str(settings.restatement_alert_pct))
    if drift and (over_amount or over_pct):
        raise FreezeProblem(
            f"restated after the freeze by {result.drift_from_frozen} {entry.currency} "
            f"({pct:.2f}% of the frozen {entry.revenue}); revenue_final unchanged, "
            "the difference is in revenue_adjustments",
            reason=Reason.LARGE_RESTATEMENT, ssp=entry.ssp, revenue_date=entry.revenue_date,
        )
