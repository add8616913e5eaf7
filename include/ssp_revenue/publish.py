"""The load phase: publish a validated batch as a new immutable version, then switch.

1. hash the content (:mod:`ssp_revenue.content`) -> ``version``; the same figures,
   in any row order, give the same version;
2. write ``tables/revenue/.../version=<hash>/part-00000.parquet`` (skipped if a
   verified copy is already there);
3. verify it cheaply from its footer: row count, schema, date statistics and the
   content hash stamped in its key-value metadata;
4. switch the Glue partition's location to it (create if absent);
5. append a ``publish_log`` row.

A crash between any two steps leaves the previous version live (or, after
step 4, the new one); a rerun redoes the missing steps and ends in the same
state, publish_log included: the partition's Parameters keep the version it
replaced, so a switch whose log row was lost is still logged as ``published``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import io
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from ssp_revenue import catalog as catalog_mod
from ssp_revenue import lake, logs, schema
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.clock import Clock
from ssp_revenue.content import encode, encoded_hash
from ssp_revenue.errors import StorageError
from ssp_revenue.normalise import Totals, totals_of, with_lineage

TABLE = "revenue"
PART = "part-00000.parquet"
VERSION_CHARS = 20
META_VERSION = b"ssp_revenue.content_hash"
META_ROWS = b"ssp_revenue.rows"
_VERSION_IN_LOCATION = re.compile(r"/version=([0-9a-f]+)/?$")


@dataclasses.dataclass(frozen=True)
class PublishResult:
    ssp: str
    revenue_date: dt.date
    version: str
    previous_version: str | None
    outcome: str  # "published" (location switched) or "unchanged"
    location: str
    totals: Totals

    def to_dict(self) -> dict[str, Any]:
        return {
            "ssp": self.ssp,
            "revenue_date": self.revenue_date.isoformat(),
            "version": self.version,
            "previous_version": self.previous_version,
            "outcome": self.outcome,
            "location": self.location,
            "totals": self.totals.to_dict(),
        }


def version_of(location: str | None) -> str | None:
    if not location:
        return None
    match = _VERSION_IN_LOCATION.search(location)
    return match.group(1) if match else None


def parquet_bytes(table: pa.Table, digest: str) -> bytes:
    """Snappy Parquet, stamped with the content hash and row count in its footer.

    The Arrow schema is not stored: read back, the columns are the Parquet
    types (dictionary-encoded text comes back as plain strings, as Athena
    sees it). Min/max statistics are written for dates, counts, money and
    timestamps, not for text: a partition's file is one row group, so text
    bounds would prune nothing, and they cost a third of the write.
    """
    metadata = {**(schema.REVENUE.metadata or {}), **(table.schema.metadata or {}),
                META_VERSION: digest.encode(), META_ROWS: str(table.num_rows).encode()}
    with_stats = [f.name for f in schema.REVENUE if f.type != pa.string()]
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, compression="snappy", store_schema=False,
                          write_statistics=with_stats) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(metadata)
    return sink.getvalue()


def verify_version(
    s3: Any, bucket: str, key: str, *, digest: str, rows: int, revenue_date: dt.date
) -> bool:
    """True if the object at ``key`` is a complete copy of this version: row count,
    schema, content hash stamp and date statistics, from its footer.

    Not its size: a copy of the same figures in another row order (a racing
    publish) is just as complete and has other bytes.
    """
    meta = lake.read_footer(s3, bucket, key)
    if meta is None:
        return False
    kv = meta.metadata or {}
    return (
        meta.num_rows == rows
        and kv.get(META_VERSION) == digest.encode()
        and meta.schema.to_arrow_schema().remove_metadata().equals(schema.REVENUE.remove_metadata())
        and _dates_are(meta, revenue_date)
    )


def _dates_are(meta: pq.FileMetaData, revenue_date: dt.date) -> bool:
    """Every row group's revenue_date statistics say exactly ``revenue_date``."""
    column = schema.REVENUE.get_field_index("revenue_date")
    for group in range(meta.num_row_groups):
        if meta.row_group(group).num_rows == 0:
            continue
        stats = meta.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max or (stats.min, stats.max) != (revenue_date, revenue_date):
            return False
    return True


def publish_batch(
    content: pa.Table,
    *,
    ssp: str,
    revenue_date: dt.date,
    fetched_at: dt.datetime,
    raw_object: str,
    expected_version: str | None,
    s3: Any,
    catalog: GlueCatalog,
    clock: Clock,
    report: str = "",
) -> PublishResult:
    """Publish one validated (SSP, date) batch. Idempotent; see the module docstring.

    ``report`` is the fetch's report identity (body sha256 and content facts): kept
    on the partition so the next fetch of the same report can skip the whole load.
    """
    day = revenue_date.isoformat()
    with ThreadPoolExecutor(max_workers=1) as lookup:  # the Glue round trip overlaps the hashing
        live = lookup.submit(catalog.get_partition, TABLE, day, ssp)
        encoded = encode(content)
        digest = encoded_hash(encoded)
        current = live.result()
    version = digest[:VERSION_CHARS]
    if expected_version is not None and version != expected_version:
        raise StorageError(
            f"content hash {version} differs from the validated batch {expected_version}",
            ssp=ssp, revenue_date=revenue_date, file=raw_object,
        )
    bucket = catalog.bucket
    key = lake.version_prefix(TABLE, ssp, revenue_date, version) + PART
    location = lake.s3_uri(bucket, lake.version_prefix(TABLE, ssp, revenue_date, version))
    previous = version_of(current.location) if current else None
    totals = totals_of(encoded)

    def complete() -> bool:
        return verify_version(s3, bucket, key, digest=digest, rows=content.num_rows,
                              revenue_date=revenue_date)

    def write() -> None:
        table = with_lineage(
            encoded, source_version=version, fetched_at=fetched_at,
            raw_object=lake.s3_uri(bucket, raw_object),
        )
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(table, digest))
        except ClientError as exc:
            raise StorageError(f"write {key}: {exc}", ssp=ssp, revenue_date=revenue_date) from exc
        if not complete():  # ours, or a racing publish's copy of the same figures
            raise StorageError(
                f"read-back of {key} does not match what was written; partition not switched",
                ssp=ssp, revenue_date=revenue_date,
            )

    if previous != version:
        if not complete():
            write()
        catalog.set_partition(TABLE, day, ssp, location,
                              _parameters(version, totals, _currency(encoded), previous, report))
        if not complete():
            # A superseded version coming back, vacuumed between our check and the switch:
            # write it again at once (readers saw an empty partition for that long at most).
            write()
        outcome = "published"
    else:
        assert current is not None
        # Same figures, maybe from other bytes or in a lake older than these parameters.
        params = _parameters(version, totals, _currency(encoded),
                             current.parameters.get("previous_version") or None,
                             report or current.parameters.get("report", ""))
        if params != current.parameters:
            catalog.set_partition(TABLE, day, ssp, current.location, params)
            current = dataclasses.replace(current, parameters=params)
        return _log_unchanged(current, ssp=ssp, revenue_date=revenue_date, fetched_at=fetched_at,
                              raw_object=raw_object, s3=s3, catalog=catalog, clock=clock)

    result = PublishResult(ssp, revenue_date, version, previous, outcome, location, totals)
    log_publish(result, fetched_at=fetched_at, published_at=clock.now(),
                raw_object=lake.s3_uri(bucket, raw_object),
                currency=_currency(encoded), s3=s3, catalog=catalog)
    return result


def _parameters(version: str, totals: Totals, currency: str, previous: str | None,
                report: str) -> dict[str, str]:
    """What the partition says of its live version: enough to log an unchanged publish
    without reading it."""
    return {"source_version": version, "row_count": str(totals.rows),
            "revenue_total": str(totals.revenue), "impressions": str(totals.impressions),
            "clicks": str(totals.clicks), "currency": currency,
            "previous_version": previous or "", "report": report}


def live_report(catalog: GlueCatalog, ssp: str, revenue_date: dt.date) -> catalog_mod.Partition | None:
    """The live partition, if it names the report identity it was published from."""
    current = catalog.get_partition(TABLE, revenue_date.isoformat(), ssp)
    return current if current is not None and current.parameters.get("report") else None


def publish_unchanged(current: catalog_mod.Partition, *, fetched_at: dt.datetime, raw_object: str,
                      s3: Any, catalog: GlueCatalog, clock: Clock) -> PublishResult:
    """Log a fetch of the report the partition already holds: no parse, no write, no switch."""
    return _log_unchanged(current, ssp=current.ssp, revenue_date=dt.date.fromisoformat(current.revenue_date),
                          fetched_at=fetched_at, raw_object=raw_object, s3=s3, catalog=catalog, clock=clock)


def _log_unchanged(current: catalog_mod.Partition, *, ssp: str, revenue_date: dt.date,
                   fetched_at: dt.datetime, raw_object: str, s3: Any, catalog: GlueCatalog,
                   clock: Clock) -> PublishResult:
    params = current.parameters
    version = version_of(current.location) or params.get("source_version", "")
    totals = Totals(rows=int(params.get("row_count", "0")), impressions=int(params.get("impressions", "0")),
                    clicks=int(params.get("clicks", "0")),
                    revenue=decimal.Decimal(params.get("revenue_total", "0")))
    previous: str | None = version
    outcome = "unchanged"
    if not logged(s3, catalog, ssp, revenue_date, version):
        # Switched by a run that died before its publish_log row: finish its record.
        outcome, previous = "published", params.get("previous_version") or None
    result = PublishResult(ssp, revenue_date, version, previous, outcome, current.location, totals)
    log_publish(result, fetched_at=fetched_at, published_at=clock.now(),
                raw_object=lake.s3_uri(catalog.bucket, raw_object),
                currency=params.get("currency", ""), s3=s3, catalog=catalog)
    return result


def logged(s3: Any, catalog: GlueCatalog, ssp: str, revenue_date: dt.date, version: str) -> bool:
    """Whether publish_log records any publish of ``version`` for the (SSP, date).

    From the file names alone (each row's file is named ``<fetched_at>-<version>``;
    a compacted file lists the names it holds): one listing, no rows read.
    """
    prefix = logs.live_prefix(catalog, "publish_log", ssp, revenue_date)
    if prefix is None:
        return False
    return any(name.endswith(f"-{version}.parquet") for name in logs.held(s3, catalog.bucket, prefix))


def _currency(encoded: pa.Table) -> str:
    return ",".join(sorted(map(str, pc.unique(encoded["currency"]).cast(pa.string()).to_pylist())))


def log_publish(
    result: PublishResult,
    *,
    fetched_at: dt.datetime,
    published_at: dt.datetime,
    raw_object: str,
    currency: str,
    s3: Any,
    catalog: GlueCatalog,
) -> str:
    """Append one publish_log row; a retry of the same publish writes the same key once."""
    row = {
        "revenue_date": result.revenue_date,
        "ssp": result.ssp,
        "table_name": TABLE,
        "version": result.version,
        "previous_version": result.previous_version,
        "outcome": result.outcome,
        "fetched_at": fetched_at,
        "published_at": published_at,
        "row_count": result.totals.rows,
        "impressions": result.totals.impressions,
        "clicks": result.totals.clicks,
        "revenue": result.totals.revenue,
        "currency": currency,
        "raw_object": raw_object,
        "location": result.location,
    }
    table = pa.Table.from_pylist([row], schema=schema.PUBLISH_LOG)
    return logs.append(s3, catalog, "publish_log", result.ssp, result.revenue_date, table,
                       at=fetched_at, tag=result.version)


def read_version(s3: Any, bucket: str, ssp: str, revenue_date: dt.date, version: str) -> pa.Table:
    """One published version of the revenue table, as written (lineage included)."""
    key = lake.version_prefix(TABLE, ssp, revenue_date, version) + PART
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise StorageError(f"cannot read version {version} at {key}: {exc}",
                           ssp=ssp, revenue_date=revenue_date) from exc
    return pq.read_table(io.BytesIO(body)).cast(schema.REVENUE)


def read_publish_log(s3: Any, catalog: GlueCatalog, ssp: str, revenue_date: dt.date) -> pa.Table:
    """Every publish of one (SSP, date), oldest fetch first."""
    log = logs.read(s3, catalog, "publish_log", ssp, revenue_date, schema.PUBLISH_LOG)
    return log.sort_by([("fetched_at", "ascending"), ("published_at", "ascending")])
