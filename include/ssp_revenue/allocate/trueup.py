"""The true-up: a statement within tolerance booked per allocation target, to the yen.

trueup = paid_jpy - the month's allocation_final, split over the targets in
proportion to their frozen allocation by the largest-remainder method the
allocation uses, so allocation_final + allocation_trueup = the statement in yen
exactly, for any split (one yen over three targets, a negative true-up). Its
own table: allocation_final and revenue_final are never rewritten. Once a month
has a true-up, the statement accounts for every restatement of its dates, so
the close stops booking their adjustment batches separately.
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ssp_revenue.allocate.rules import largest_remainder
from ssp_revenue.core import schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import PipelineError
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog

TABLE = "allocation_trueup"


@dataclasses.dataclass(frozen=True)
class TrueUp:
    ssp: str
    month: Month
    statement_id: str
    statement_sha256: str
    frozen: dict[str, int]
    trueup: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.trueup.values())

    @property
    def paid(self) -> int:
        return sum(self.frozen.values()) + self.total

    @property
    def key(self) -> str:
        facts = json.dumps([self.statement_sha256, self.frozen, self.trueup], sort_keys=True)
        return hashlib.sha256(facts.encode()).hexdigest()[:32]

    def table(self) -> pa.Table:
        return pa.Table.from_pylist([
            {"revenue_date": self.month.first, "ssp": self.ssp, "month": str(self.month), "target": target,
             "frozen_jpy": decimal.Decimal(self.frozen.get(target, 0)),
             "trueup_jpy": decimal.Decimal(self.trueup[target]),
             "paid_jpy": decimal.Decimal(self.frozen.get(target, 0) + self.trueup[target]),
             "statement_id": self.statement_id, "source_version": self.statement_sha256}
            for target in sorted(self.trueup)], schema=schema.ALLOCATION_TRUEUP)


def split(paid_jpy: int, frozen: dict[str, int]) -> dict[str, int]:
    """The yen between the statement and the frozen allocation, per target, adding up exactly."""
    difference = paid_jpy - sum(frozen.values())
    shares = {t: decimal.Decimal(max(yen, 0)) for t, yen in frozen.items()}
    if not any(shares.values()):
        raise PipelineError(f"nothing was allocated to split a true-up of {difference} JPY by")
    return largest_remainder(difference, shares)


def book(found: TrueUp, *, s3: Any, catalog: GlueCatalog) -> bool:
    """Point the (month, SSP) partition at this true-up; False when it already did."""
    prefix = store.partition_prefix(TABLE, found.ssp, found.month.first) + f"trueup={found.key}/"
    location = store.s3_uri(catalog.bucket, prefix)
    part = catalog.get_partition(TABLE, found.month.first.isoformat(), found.ssp)
    if part is not None and part.location == location:
        return False
    sink = io.BytesIO()
    pq.write_table(found.table(), sink)
    store.put_once(s3, catalog.bucket, prefix + "part-00000.parquet", sink.getvalue())
    catalog.set_partition(TABLE, found.month.first.isoformat(), found.ssp, location,
                          {"statement_id": found.statement_id, "trueup_jpy": str(found.total),
                           "paid_jpy": str(found.paid)})
    return True


@dataclasses.dataclass(frozen=True)
class Booked:
    statement_id: str
    by_target: dict[str, int]


def booked(month: Month, ssp: str, *, s3: Any, catalog: GlueCatalog) -> Booked | None:
    """The true-up booked for (month, SSP), or None while the month awaits its statement."""
    part = catalog.get_partition(TABLE, month.first.isoformat(), ssp)
    if part is None:
        return None
    table = store.read_location(s3, part.location, schema.ALLOCATION_TRUEUP)
    return Booked(part.parameters.get("statement_id", ""),
                  {r["target"]: int(r["trueup_jpy"]) for r in table.to_pylist()})

