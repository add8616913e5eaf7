"""Freezing: each (SSP, date) gets its final figures once, and they never change.

cutoff(D) = start of D in the business zone + freeze hours. The frozen figures
are the newest validated version *fetched* at or before the cutoff (from
publish_log), so the answer does not depend on when this runs. If none was, the
earliest version fetched within the grace period is frozen with ``late=true``.

Order of writes, chosen so that a crash or a race anywhere converges:
1. the ledger entry ``ledger/finalized/ssp=S/revenue_date=D.json``, by
   conditional put: exactly one writer wins, and its ``finalized_at`` is *the*
   finalized_at;
2. ``revenue_final`` materialised from the ledger alone (same bytes whoever
   writes it), then its Glue partition created once, with the frozen version,
   row count and totals in the partition's Parameters.
A rerun that finds the ledger only completes step 2 or checks it; a table
that disagrees with the ledger is reported, never rewritten.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from ssp_revenue.core import calendar, schema
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.errors import FreezeProblem, Reason, StorageError
from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.normalise import totals_of
from ssp_revenue.lake import publish, store
from ssp_revenue.lake.catalog import GlueCatalog

TABLE = "revenue_final"


def ledger_key(ssp: str, revenue_date: dt.date) -> str:
    return f"ledger/finalized/ssp={store.partition_value(ssp)}/revenue_date={revenue_date.isoformat()}.json"


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    ssp: str
    revenue_date: dt.date
    version: str
    row_count: int
    impressions: int
    clicks: int
    revenue: str
    currency: str
    fetched_at: dt.datetime
    cutoff: dt.datetime
    finalized_at: dt.datetime
    late: bool
    raw_object: str

    def to_json(self) -> bytes:
        data = dataclasses.asdict(self)
        for key in ("fetched_at", "cutoff", "finalized_at"):
            data[key] = data[key].isoformat()
        data["revenue_date"] = self.revenue_date.isoformat()
        return json.dumps(data, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes) -> LedgerEntry:
        data = json.loads(body)
        for key in ("fetched_at", "cutoff", "finalized_at"):
            data[key] = parse_instant(data[key])
        data["revenue_date"] = dt.date.fromisoformat(data["revenue_date"])
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class FreezeResult:
    ssp: str
    revenue_date: dt.date
    state: str  # "open", "frozen", "already_frozen"
    entry: LedgerEntry | None = None
    detail: str = ""


def read_ledger(s3: Any, bucket: str, ssp: str, revenue_date: dt.date) -> LedgerEntry | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=ledger_key(ssp, revenue_date))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise StorageError(f"cannot read ledger for {ssp} {revenue_date}: {exc}") from exc
    return LedgerEntry.from_json(body)


def frozen_dates(s3: Any, bucket: str, ssp: str) -> set[dt.date]:
    keys = store.list_keys(s3, bucket, f"ledger/finalized/ssp={store.partition_value(ssp)}/")
    return {
        dt.date.fromisoformat(k.rsplit("revenue_date=", 1)[1].removesuffix(".json")) for k in keys
    }


def choose_version(
    log: pa.Table, cutoff: dt.datetime, grace: dt.timedelta
) -> tuple[dict[str, Any] | None, bool]:
    """(publish_log row to freeze, late?) from the fetch history alone."""
    rows = sorted(log.to_pylist(), key=lambda r: (r["fetched_at"], r["version"]))
    on_time = [r for r in rows if r["fetched_at"] <= cutoff]
    if on_time:
        return on_time[-1], False
    in_grace = [r for r in rows if cutoff < r["fetched_at"] <= cutoff + grace]
    if in_grace:
        return in_grace[0], True
    return None, False


def freeze_date(
    ssp: str,
    revenue_date: dt.date,
    *,
    settings: Settings,
    s3: Any,
    catalog: GlueCatalog,
    now: dt.datetime,
) -> FreezeResult:
    """Freeze one (SSP, date) if due. Raises FreezeProblem for what needs classifying."""
    bucket = catalog.bucket
    cut = calendar.cutoff(revenue_date, settings.tz, settings.freeze_hours)
    where = {"ssp": ssp, "revenue_date": revenue_date}
    entry = read_ledger(s3, bucket, ssp, revenue_date)
    if entry is not None:
        materialise(entry, s3=s3, catalog=catalog)
        return FreezeResult(ssp, revenue_date, "already_frozen", entry)
    if now < cut:
        return FreezeResult(ssp, revenue_date, "open", detail=f"cutoff at {cut.isoformat()}")

    log = publish.read_publish_log(s3, catalog, ssp, revenue_date)
    chosen, late = choose_version(log, cut, settings.grace)
    if chosen is None:
        raise FreezeProblem(
            f"no validated version fetched by the cutoff {cut.isoformat()} "
            f"(grace until {(cut + settings.grace).isoformat()})",
            reason=Reason.NO_VERSION_AT_CUTOFF, **where,  # type: ignore[arg-type]
        )
    candidate = LedgerEntry(
        ssp=ssp, revenue_date=revenue_date, version=chosen["version"],
        row_count=chosen["row_count"], impressions=chosen["impressions"], clicks=chosen["clicks"],
        revenue=str(chosen["revenue"]), currency=chosen["currency"],
        fetched_at=chosen["fetched_at"], cutoff=cut, finalized_at=now, late=late,
        raw_object=chosen["raw_object"],
    )
    won = store.put_once(s3, bucket, ledger_key(ssp, revenue_date), candidate.to_json(),
                        ContentType="application/json")
    entry = candidate if won else read_ledger(s3, bucket, ssp, revenue_date)
    assert entry is not None
    materialise(entry, s3=s3, catalog=catalog)
    if won and late:
        raise FreezeProblem(
            f"frozen late: no version by the cutoff {cut.isoformat()}; froze version "
            f"{entry.version} fetched at {entry.fetched_at.isoformat()}",
            reason=Reason.LATE_VERSION, **where,  # type: ignore[arg-type]
        )
    return FreezeResult(ssp, revenue_date, "frozen" if won else "already_frozen", entry)


def final_key(entry: LedgerEntry) -> str:
    return store.version_prefix(TABLE, entry.ssp, entry.revenue_date, entry.version) + publish.PART


def final_bytes(entry: LedgerEntry, s3: Any, bucket: str) -> bytes:
    """revenue_final content for a ledger entry: a pure function of the ledger and the version."""
    source = publish.read_version(s3, bucket, entry.ssp, entry.revenue_date, entry.version)
    totals = totals_of(source)
    if totals.rows != entry.row_count or str(totals.revenue) != entry.revenue:
        raise FreezeProblem(
            f"version {entry.version} holds {totals.rows} rows / {totals.revenue}, "
            f"the ledger says {entry.row_count} rows / {entry.revenue}",
            reason=Reason.LEDGER_MISMATCH, ssp=entry.ssp, revenue_date=entry.revenue_date,
        )
    finalized = pa.repeat(pa.scalar(entry.finalized_at, pa.timestamp("us", tz="UTC")), source.num_rows)
    table = source.select(schema.REVENUE.names).append_column(
        schema.REVENUE_FINAL.field("finalized_at"), finalized
    ).cast(schema.REVENUE_FINAL)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def partition_parameters(entry: LedgerEntry) -> dict[str, str]:
    return {
        "source_version": entry.version,
        "row_count": str(entry.row_count),
        "revenue_total": entry.revenue,
        "impressions_total": str(entry.impressions),
        "clicks_total": str(entry.clicks),
        "currency": entry.currency,
        "cutoff": entry.cutoff.isoformat(),
        "finalized_at": entry.finalized_at.isoformat(),
        "late": str(entry.late).lower(),
    }


def materialise(entry: LedgerEntry, *, s3: Any, catalog: GlueCatalog) -> None:
    """Make revenue_final agree with the ledger: write what is missing, report what differs."""
    day = entry.revenue_date.isoformat()
    existing = catalog.get_partition(TABLE, day, entry.ssp)
    location = store.s3_uri(catalog.bucket,
                           store.version_prefix(TABLE, entry.ssp, entry.revenue_date, entry.version))
    if existing is not None:
        check_agrees(entry, existing.location, existing.parameters)
        return
    body = final_bytes(entry, s3, catalog.bucket)
    key = final_key(entry)
    if not store.put_once(s3, catalog.bucket, key, body):
        current = s3.get_object(Bucket=catalog.bucket, Key=key)["Body"].read()
        if current != body:
            raise FreezeProblem(
                f"{key} exists with other content than the ledger implies",
                reason=Reason.LEDGER_MISMATCH, ssp=entry.ssp, revenue_date=entry.revenue_date,
            )
    created = catalog.create_partition_once(TABLE, day, entry.ssp, location,
                                            partition_parameters(entry))
    if not created:
        found = catalog.get_partition(TABLE, day, entry.ssp)
        assert found is not None
        check_agrees(entry, found.location, found.parameters)


def check_agrees(entry: LedgerEntry, location: str, parameters: dict[str, str]) -> None:
    expected = partition_parameters(entry)
    if publish.version_of(location) != entry.version or parameters != expected:
        raise FreezeProblem(
            f"revenue_final partition points at {location} with {parameters}; "
            f"the ledger says version {entry.version} with {expected}",
            reason=Reason.LEDGER_MISMATCH, ssp=entry.ssp, revenue_date=entry.revenue_date,
        )
