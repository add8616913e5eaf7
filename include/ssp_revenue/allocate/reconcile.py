"""Reconciliation: what we froze (+ the adjustments since) against what the statement pays.

For (SSP, month), in the SSP's currency and in whole yen:

- ``frozen``: the ledger totals of the month's dates (revenue_final);
- ``adjustments``: every adjustment batch of those dates recorded so far;
- ``reported`` = frozen + adjustments; ``paid``: the statement in force;
- ``variance`` = paid - reported, and its share of reported.

In yen, frozen is allocation_final, adjustments are each batch at its date's
rules and rate (as the close books them), and paid is the statement at its own
payment rate when it states one, else at the rate of the month's last day. A
pure function of the lake and the statement, so a rerun writes nothing new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ssp_revenue.allocate import close, tables, trueup
from ssp_revenue.allocate.rules import to_yen
from ssp_revenue.core import schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import PipelineError
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.settings import Settings
from ssp_revenue.finalize import adjustments, freeze
from ssp_revenue.ingest.statements import Statement
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog

TABLE = "statement_reconciliation"
SIX = decimal.Decimal("0.000001")
_WIDE = pa.decimal128(38, schema.MONEY_SCALE)
WITHIN = "within_tolerance"
BEYOND = "beyond_tolerance"


class NotYetReconcilable(PipelineError):
    """A date of the month is not frozen or not allocated yet: its own incident (if any) says why."""


@dataclasses.dataclass(frozen=True)
class Reported:
    """The month as we froze and adjusted it."""

    frozen: decimal.Decimal
    adjustments: decimal.Decimal
    frozen_by_target: dict[str, int]
    adjustments_jpy: int

    @property
    def frozen_jpy(self) -> int:
        return sum(self.frozen_by_target.values())


def reported(config: SspConfig, month: Month, *, settings: Settings, s3: Any, catalog: GlueCatalog,
             inputs: tables.AllocationInputs) -> Reported:
    frozen = decimal.Decimal(0)
    booked = decimal.Decimal(0)
    by_target: dict[str, int] = {}
    adjustments_jpy = 0
    missing = []
    end = settings.end_date
    days = [d for d in month.dates(settings.start_date) if end is None or d <= end]
    frozen_days = freeze.frozen_dates(s3, settings.bucket, config.name)  # one listing: wait cheaply
    if not set(days) <= frozen_days:
        waiting = [f"{d}: not frozen" for d in days if d not in frozen_days]
        raise NotYetReconcilable(f"{month} cannot be reconciled yet: " + "; ".join(waiting), ssp=config.name)
    for day in days:  # an account retired within the month is paid for its own days
        entry = freeze.read_ledger(s3, settings.bucket, config.name, day)
        allocated = tables.read_day(config.name, day, s3=s3, catalog=catalog) if entry else None
        if entry is None or allocated is None:
            missing.append(f"{day}: {'not frozen' if entry is None else 'frozen, not allocated'}")
            continue
        frozen += decimal.Decimal(entry.revenue)
        for row in allocated[1].select(["target", "revenue_jpy"]).to_pylist():
            by_target[row["target"]] = by_target.get(row["target"], 0) + int(row["revenue_jpy"])
        batches = adjustments.read_batches(s3, settings.bucket, config.name, day)
        booked += pc.sum(batches["revenue_delta"].cast(_WIDE)).as_py() or decimal.Decimal(0)
        for sequence in sorted(set(batches["sequence"].to_pylist())):
            rows = batches.filter(pc.equal(batches["sequence"], sequence))
            adjustments_jpy += sum(close.batch_yen(rows, config.name, day, config.currency, inputs).values())
    if missing:
        raise NotYetReconcilable(f"{month} cannot be reconciled yet: " + "; ".join(missing), ssp=config.name)
    return Reported(frozen, booked, dict(sorted(by_target.items())), adjustments_jpy)


@dataclasses.dataclass(frozen=True)
class Reconciliation:
    ssp: str
    month: Month
    currency: str
    statement: Statement
    reported: Reported
    paid: decimal.Decimal  # in the SSP's currency
    paid_jpy: int
    tolerance_pct: decimal.Decimal
    explanation: str

    @property
    def variance(self) -> decimal.Decimal:
        return self.paid - self.reported_total

    @property
    def reported_total(self) -> decimal.Decimal:
        return self.reported.frozen + self.reported.adjustments

    @property
    def reported_jpy(self) -> int:
        return self.reported.frozen_jpy + self.reported.adjustments_jpy

    @property
    def variance_share(self) -> decimal.Decimal:
        if not self.reported_total:
            return decimal.Decimal(0) if not self.variance else decimal.Decimal(1)
        return (self.variance / self.reported_total).quantize(SIX)

    @property
    def within(self) -> bool:
        return abs(self.variance_share) * 100 <= self.tolerance_pct

    @property
    def status(self) -> str:
        return WITHIN if self.within else BEYOND

    def summary(self) -> str:
        return (f"{self.ssp} {self.month}: reported {self.reported_total} {self.currency}, statement "
                f"{self.statement.statement_id} pays {self.paid} {self.currency} ({self.paid_jpy} JPY): "
                f"variance {self.variance} ({self.variance_share * 100:.3f}%, tolerance "
                f"{self.tolerance_pct}%); {self.explanation}")

    def row(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "revenue_date": self.month.first, "ssp": self.ssp, "month": str(self.month),
            "currency": self.currency, "statement_id": self.statement.statement_id,
            "statement_currency": self.statement.currency, "frozen": self.reported.frozen,
            "adjustments": self.reported.adjustments, "reported": self.reported_total, "paid": self.paid,
            "variance": self.variance, "variance_share": self.variance_share,
            "frozen_jpy": decimal.Decimal(self.reported.frozen_jpy),
            "adjustments_jpy": decimal.Decimal(self.reported.adjustments_jpy),
            "reported_jpy": decimal.Decimal(self.reported_jpy), "paid_jpy": decimal.Decimal(self.paid_jpy),
            "variance_jpy": decimal.Decimal(self.paid_jpy - self.reported_jpy),
            "tolerance_pct": self.tolerance_pct, "status": self.status, "explanation": self.explanation,
            "reconciled_at": now,
        }

    def true_up(self) -> trueup.TrueUp:
        """The variance booked per target: the frozen allocation + these lines = paid, to the yen."""
        frozen = self.reported.frozen_by_target
        try:
            parts = trueup.split(self.paid_jpy, frozen)
        except PipelineError as exc:
            raise exc.located(ssp=self.ssp) from None
        return trueup.TrueUp(self.ssp, self.month, self.statement.statement_id, self.statement.sha256,
                             dict(frozen), parts)

    @property
    def key(self) -> str:
        """Names what the result depends on: the same inputs land on the same prefix."""
        facts = [self.statement.sha256, str(self.reported.frozen), str(self.reported.adjustments),
                 json.dumps(self.reported.frozen_by_target, sort_keys=True),
                 str(self.reported.adjustments_jpy),
                 str(self.tolerance_pct)]
        return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:32]


def _explain(statement: Statement, currency: str, variance_unexplained: decimal.Decimal | None) -> str:
    parts = [f"{label} {amount} {statement.currency}"
             for label, amount in sorted(statement.itemised().items())]
    if statement.payment_fx_rate is not None and statement.currency != currency:
        parts.append(f"paid in {statement.currency} at {statement.payment_fx_rate} per {currency}")
    if variance_unexplained is not None and variance_unexplained:
        parts.append(f"not itemised {variance_unexplained} {currency} (rounding, or restatements the "
                     "statement does not list)")
    return "; ".join(parts) if parts else "the statement pays exactly what was reported"


def reconcile(config: SspConfig, statement: Statement, *, settings: Settings, s3: Any,
              catalog: GlueCatalog, inputs: tables.AllocationInputs) -> Reconciliation:
    assert config.statement is not None
    month = statement.month
    found = reported(config, month, settings=settings, s3=s3, catalog=catalog, inputs=inputs)
    rate = statement.payment_fx_rate
    if statement.currency == config.currency:
        paid = statement.total
        yen_rate = decimal.Decimal(1) if config.currency == "JPY" else (
            rate or inputs.rates.rate(config.currency, month.last))
        paid_jpy = to_yen(paid * yen_rate)
    else:  # a JPY statement of a foreign-currency account, at its payment rate
        assert rate is not None
        paid = (statement.total / rate).quantize(SIX)
        paid_jpy = to_yen(statement.total)
    unexplained: decimal.Decimal | None = None
    if statement.currency == config.currency:
        itemised = sum(statement.itemised().values(), decimal.Decimal(0))
        unexplained = paid - (found.frozen + found.adjustments) - itemised
    return Reconciliation(config.name, month, config.currency, statement, found, paid, paid_jpy,
                          config.statement.tolerance_pct, _explain(statement, config.currency, unexplained))


def inputs_fingerprint(config: SspConfig, month: Month, statement: Statement, *, s3: Any, bucket: str,
                       inputs: tables.AllocationInputs) -> str:
    """What a reconciliation reads, named in three listings (the ledger, allocation_final's
    versions and the adjustment batches of the month's dates), the tolerance, and the
    month-end rate a statement without its own is converted at. Equal: nothing to redo."""
    assert config.statement is not None
    ssp = config.name
    days = f"revenue_date={month.first.isoformat()[:8]}"
    try:
        rate = str(inputs.rates.rate(config.currency, month.last))
    except PipelineError:
        rate = "missing"
    listed = [statement.sha256, str(config.statement.tolerance_pct), rate]
    listed += store.list_keys(s3, bucket, f"ledger/finalized/ssp={store.partition_value(ssp)}/{days}")
    for table in (tables.TABLE, adjustments.TABLE):
        listed += [k for k in store.list_keys(s3, bucket, f"tables/{table}/{days}")
                   if f"/ssp={ssp}/" in k]
    return hashlib.sha256("\n".join(listed).encode()).hexdigest()[:32]


def reconciled_with(ssp: str, month: Month, fingerprint: str, catalog: GlueCatalog) -> dict[str, str] | None:
    """What was recorded (status, summary) for these very inputs, if anything."""
    part = catalog.get_partition(TABLE, month.first.isoformat(), ssp)
    if part is None or part.parameters.get("inputs") != fingerprint:
        return None
    return part.parameters


def record(result: Reconciliation, *, s3: Any, catalog: GlueCatalog, now: dt.datetime,
           fingerprint: str = "") -> bool:
    """Point the (month, SSP) partition at this result; False when it already did."""
    prefix = store.partition_prefix(TABLE, result.ssp, result.month.first) + f"result={result.key}/"
    location = store.s3_uri(catalog.bucket, prefix)
    part = catalog.get_partition(TABLE, result.month.first.isoformat(), result.ssp)
    parameters = {"statement_id": result.statement.statement_id, "status": result.status,
                  "inputs": fingerprint, "summary": result.summary()[:2000]}
    if part is not None and part.location == location and part.parameters == parameters:
        return False
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([result.row(now)], schema=schema.STATEMENT_RECONCILIATION), sink)
    store.put_once(s3, catalog.bucket, prefix + "part-00000.parquet", sink.getvalue())
    catalog.set_partition(TABLE, result.month.first.isoformat(), result.ssp, location, parameters)
    return True


def recorded(month: Month, ssp: str, *, s3: Any, catalog: GlueCatalog) -> dict[str, Any] | None:
    """The reconciliation row in force for (month, SSP), or None while it awaits a statement."""
    part = catalog.get_partition(TABLE, month.first.isoformat(), ssp)
    if part is None:
        return None
    rows = store.read_location(s3, part.location, schema.STATEMENT_RECONCILIATION).to_pylist()
    return rows[0] if rows else None
