"""allocation_final: each frozen (SSP, date) split by the rules in effect, written once.

The partition of (D, S) is created once, pointing at ``rules=<rules version>/``;
a later change of rules does not move it in the daily run. Moving it is
``recompute``: an explicit act that writes the new version, records the
difference per target in ``allocation_changes``, and only then switches the
partition (so a crash anywhere leaves either the old allocation or the new one,
and a rerun finishes the job).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ssp_revenue.allocate.delivery import CsvDelivery, DeliverySource
from ssp_revenue.allocate.fx import CsvRates, RateSource
from ssp_revenue.allocate.rules import RuleBook, allocate_day, load_rules, load_targets
from ssp_revenue.core import schema
from ssp_revenue.finalize import freeze
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog, Partition

TABLE = "allocation_final"
CHANGES = "allocation_changes"


@dataclasses.dataclass(frozen=True)
class AllocationInputs:
    """What an allocation depends on besides the frozen figures."""

    book: RuleBook
    rates: RateSource
    delivery: DeliverySource

    @classmethod
    def from_config(cls, config_dir: Path) -> AllocationInputs:
        """The business team's files; a bad rules file raises RulesError listing every line."""
        targets = load_targets(config_dir / "allocation_targets.csv")
        return cls(
            book=load_rules(config_dir / "allocation_rules.csv", targets),
            rates=CsvRates(config_dir / "fx_rates.csv"),
            delivery=CsvDelivery(config_dir / "delivery_sample.csv"),
        )


def allocation_prefix(entry: freeze.LedgerEntry, rules_version: str) -> str:
    return store.partition_prefix(TABLE, entry.ssp, entry.revenue_date) + f"rules={rules_version}/"


def by_ad_unit(frozen: pa.Table, amount: str = "revenue") -> list[dict[str, Any]]:
    """Amounts summed per (media, ad_unit): the grain rules are written at."""
    grouped = frozen.group_by(["media", "ad_unit"]).aggregate([(amount, "sum")])
    return grouped.rename_columns(["media", "ad_unit", amount]).to_pylist()  # type: ignore[no-any-return]


def allocation_rows(
    entry: freeze.LedgerEntry, frozen: pa.Table, inputs: AllocationInputs
) -> pa.Table:
    """allocation_final rows for one frozen (SSP, date); a pure function of its inputs."""
    rate = inputs.rates.rate(entry.currency, entry.revenue_date)
    parts = allocate_day(by_ad_unit(frozen), ssp=entry.ssp, day=entry.revenue_date, book=inputs.book,
                         rate=rate, delivery=inputs.delivery)
    rows = [
        {"revenue_date": entry.revenue_date, "ssp": entry.ssp, "target": target,
         "revenue_jpy": decimal.Decimal(yen), "currency": entry.currency, "fx_rate": rate,
         "rules_version": inputs.book.version, "source_version": entry.version}
        for target, yen in parts.items()
    ]
    return pa.Table.from_pylist(rows, schema=schema.ALLOCATION_FINAL)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def read_frozen(entry: freeze.LedgerEntry, s3: Any, bucket: str) -> pa.Table:
    body = s3.get_object(Bucket=bucket, Key=freeze.final_key(entry))["Body"].read()
    return pq.read_table(io.BytesIO(body), columns=["media", "ad_unit", "revenue"])


def _write_version(entry: freeze.LedgerEntry, table: pa.Table, rules_version: str, s3: Any,
                   bucket: str) -> str:
    prefix = allocation_prefix(entry, rules_version)
    store.put_once(s3, bucket, prefix + "part-00000.parquet", _parquet(table))
    return prefix


def _parameters(table: pa.Table, entry: freeze.LedgerEntry, rules_version: str) -> dict[str, str]:
    total = pc.sum(table["revenue_jpy"]).as_py() or decimal.Decimal(0)
    rate = table["fx_rate"][0].as_py() if table.num_rows else ""
    return {"rules_version": rules_version, "source_version": entry.version, "total_jpy": str(total),
            "fx_rate": str(rate)}


def allocate_frozen(entry: freeze.LedgerEntry, *, inputs: AllocationInputs, s3: Any,
                    catalog: GlueCatalog) -> str:
    """'written', 'unchanged' (already allocated with these rules) or 'kept' (with other rules)."""
    day = entry.revenue_date.isoformat()
    existing = catalog.get_partition(TABLE, day, entry.ssp)
    if existing is not None:
        same = existing.parameters.get("rules_version") == inputs.book.version
        return "unchanged" if same else "kept"
    table = allocation_rows(entry, read_frozen(entry, s3, catalog.bucket), inputs)
    prefix = _write_version(entry, table, inputs.book.version, s3, catalog.bucket)
    created = catalog.create_partition_once(
        TABLE, day, entry.ssp, store.s3_uri(catalog.bucket, prefix),
        _parameters(table, entry, inputs.book.version),
    )
    return "written" if created else "unchanged"


def read_allocation(location: str, s3: Any) -> pa.Table:
    return store.read_location(s3, location, schema.ALLOCATION_FINAL)


def read_day(ssp: str, day: dt.date, *, s3: Any, catalog: GlueCatalog) -> tuple[Partition, pa.Table] | None:
    """An (SSP, date)'s live allocation partition and its rows; None if it is not allocated."""
    part = catalog.get_partition(TABLE, day.isoformat(), ssp)
    return None if part is None else (part, read_allocation(part.location, s3))


def _yen_by_target(table: pa.Table) -> dict[str, int]:
    return {r["target"]: int(r["revenue_jpy"]) for r in table.to_pylist()}


@dataclasses.dataclass(frozen=True)
class Recomputed:
    ssp: str
    revenue_date: dt.date
    state: str  # "unchanged" (same rules), "same_amounts", "recomputed", "first_allocation"
    previous_rules: str | None
    rules_version: str
    delta: dict[str, int]


def change_key(entry: freeze.LedgerEntry, previous: str, current: str) -> str:
    return (store.partition_prefix(CHANGES, entry.ssp, entry.revenue_date)
            + f"from={previous}-to={current}.parquet")


def recompute(entry: freeze.LedgerEntry, *, inputs: AllocationInputs, s3: Any, catalog: GlueCatalog,
              now: dt.datetime) -> Recomputed:
    """Allocate again with the current rules; on a difference, record it and switch, on purpose.

    Same rules: nothing is written. Other rules giving the same yen per target:
    nothing is written either (the allocation in place stands, with the rules
    that made it). Otherwise the new version is written, the difference is put
    (once) in allocation_changes, and the partition is switched to the new version.
    """
    day = entry.revenue_date.isoformat()
    version = inputs.book.version
    existing = catalog.get_partition(TABLE, day, entry.ssp)
    if existing is None:
        allocate_frozen(entry, inputs=inputs, s3=s3, catalog=catalog)
        return Recomputed(entry.ssp, entry.revenue_date, "first_allocation", None, version, {})
    previous = existing.parameters.get("rules_version", "")
    if previous == version:
        return Recomputed(entry.ssp, entry.revenue_date, "unchanged", previous, version, {})
    table = allocation_rows(entry, read_frozen(entry, s3, catalog.bucket), inputs)
    before = _yen_by_target(read_allocation(existing.location, s3))
    after = _yen_by_target(table)
    delta = {t: after.get(t, 0) - before.get(t, 0) for t in sorted(set(before) | set(after))}
    if not any(delta.values()):
        return Recomputed(entry.ssp, entry.revenue_date, "same_amounts", previous, version, {})
    prefix = _write_version(entry, table, version, s3, catalog.bucket)
    changes = pa.Table.from_pylist(
        [{"revenue_date": entry.revenue_date, "ssp": entry.ssp, "target": t,
          "previous_jpy": decimal.Decimal(before.get(t, 0)), "revenue_jpy": decimal.Decimal(after.get(t, 0)),
          "delta_jpy": decimal.Decimal(d), "previous_rules_version": previous, "rules_version": version,
          "source_version": entry.version, "recomputed_at": now}
         for t, d in delta.items()],
        schema=schema.ALLOCATION_CHANGES,
    )
    store.put_once(s3, catalog.bucket, change_key(entry, previous, version), _parquet(changes))
    catalog.create_partition_once(
        CHANGES, day, entry.ssp,
        store.s3_uri(catalog.bucket, store.partition_prefix(CHANGES, entry.ssp, entry.revenue_date)), {},
    )
    catalog.set_partition(TABLE, day, entry.ssp, store.s3_uri(catalog.bucket, prefix),
                          _parameters(table, entry, version))
    return Recomputed(entry.ssp, entry.revenue_date, "recomputed", previous, version,
                      {t: d for t, d in delta.items() if d})
