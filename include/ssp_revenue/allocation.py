"""allocation_final: each frozen (SSP, date) split by the rules in effect, written once.

The partition of (D, S) is created once, pointing at ``rules=<rules version>/``;
a later change of rules does not move it (recomputing with new rules is an
explicit, recorded act, not a side effect of the daily run).
"""

from __future__ import annotations

import decimal
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ssp_revenue import freeze, lake, schema
from ssp_revenue.allocate import RuleBook, allocate_day
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.fx import RateSource

TABLE = "allocation_final"


def allocation_prefix(entry: freeze.LedgerEntry, rules_version: str) -> str:
    return lake.partition_prefix(TABLE, entry.ssp, entry.revenue_date) + f"rules={rules_version}/"


def allocate_frozen(
    entry: freeze.LedgerEntry, *, book: RuleBook, rates: RateSource, s3: Any, catalog: GlueCatalog
) -> str:
    """'written', 'unchanged' (already allocated with these rules) or 'kept' (other rules)."""
    day = entry.revenue_date.isoformat()
    existing = catalog.get_partition(TABLE, day, entry.ssp)
    if existing is not None:
        same = existing.parameters.get("rules_version") == book.version
        return "unchanged" if same else "kept"
    body = s3.get_object(Bucket=catalog.bucket, Key=freeze.final_key(entry))["Body"].read()
    frozen = pq.read_table(io.BytesIO(body)).select(["media", "ad_unit", "revenue", "currency"])
    rate = rates.rate(entry.currency, entry.revenue_date)
    rows = allocate_day(frozen.to_pylist(), ssp=entry.ssp, day=entry.revenue_date, book=book,
                        rate=rate, source_version=entry.version)
    for row in rows:
        row["revenue_jpy"] = decimal.Decimal(int(row["revenue_jpy"]))  # type: ignore[call-overload]
    table = pa.Table.from_pylist(rows, schema=schema.ALLOCATION_FINAL)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    prefix = allocation_prefix(entry, book.version)
    lake.put_once(s3, catalog.bucket, prefix + "part-00000.parquet", sink.getvalue())
    total = sum((decimal.Decimal(r["revenue_jpy"]) for r in rows), decimal.Decimal(0))  # type: ignore[arg-type]
    created = catalog.create_partition_once(
        TABLE, day, entry.ssp, lake.s3_uri(catalog.bucket, prefix),
        {"rules_version": book.version, "source_version": entry.version, "total_jpy": str(total),
         "fx_rate": str(rate)},
    )
    return "written" if created else "unchanged"
