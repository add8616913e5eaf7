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
import io
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from ssp_revenue import lake, schema
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


FOOTER_READ = 64 * 1024


def read_footer(s3: Any, bucket: str, key: str) -> pq.FileMetaData | None:
    """An object's Parquet footer, in one suffix-range GET (two if the footer is larger
    than ``FOOTER_READ``); None if the object is missing or not Parquet."""
    try:
        reply = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{FOOTER_READ}")
    except ClientError:
        return None
    tail = reply["Body"].read()
    size = int(str(reply.get("ContentRange", "")).rpartition("/")[2] or len(tail))
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        return None
    needed = int.from_bytes(tail[-8:-4], "little") + 8
    if needed > len(tail) and needed <= size:
        tail = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{needed}")["Body"].read()
    try:
        return pq.read_metadata(io.BytesIO(tail))
    except (pa.ArrowException, OSError):
        return None


def verify_version(
    s3: Any, bucket: str, key: str, *, digest: str, rows: int, revenue_date: dt.date
) -> bool:
    """True if the object at ``key`` is a complete copy of this version: row count,
    schema, content hash stamp and date statistics, from its footer.

    Not its size: a copy of the same figures in another row order (a racing
    publish) is just as complete and has other bytes.
    """
    meta = read_footer(s3, bucket, key)
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
) -> PublishResult:
    """Publish one validated (SSP, date) batch. Idempotent; see the module docstring."""
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

    if previous != version:
        if not complete():
            table = with_lineage(
                encoded, source_version=version, fetched_at=fetched_at,
                raw_object=lake.s3_uri(bucket, raw_object),
            )
            body = parquet_bytes(table, digest)
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            except ClientError as exc:
                raise StorageError(f"write {key}: {exc}", ssp=ssp, revenue_date=revenue_date) from exc
            if not complete():  # ours, or a racing publish's copy of the same figures
                raise StorageError(
                    f"read-back of {key} does not match what was written; partition not switched",
                    ssp=ssp, revenue_date=revenue_date,
                )
        catalog.set_partition(
            TABLE, day, ssp, location,
            {"source_version": version, "row_count": str(totals.rows),
             "revenue_total": str(totals.revenue), "previous_version": previous or ""},
        )
        outcome = "published"
    elif not logged(s3, bucket, ssp, revenue_date, version):
        # Switched by a run that died before its publish_log row: finish its record.
        assert current is not None
        previous = current.parameters.get("previous_version") or None
        outcome = "published"
    else:
        outcome = "unchanged"

    result = PublishResult(ssp, revenue_date, version, previous, outcome, location, totals)
    log_publish(result, fetched_at=fetched_at, published_at=clock.now(),
                raw_object=lake.s3_uri(bucket, raw_object),
                currency=_currency(encoded), s3=s3, catalog=catalog)
    return result


def logged(s3: Any, bucket: str, ssp: str, revenue_date: dt.date, version: str) -> bool:
    """Whether publish_log records any publish of ``version`` for the (SSP, date)."""
    prefix = lake.partition_prefix("publish_log", ssp, revenue_date)
    return any(k.endswith(f"-{version}.parquet") for k in lake.list_keys(s3, bucket, prefix))


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
    prefix = lake.partition_prefix("publish_log", result.ssp, result.revenue_date)
    key = f"{prefix}{lake.stamp(fetched_at)}-{result.version}.parquet"
    sink = io.BytesIO()
    pq.write_table(table, sink)
    lake.put_once(s3, catalog.bucket, key, sink.getvalue())
    day = result.revenue_date.isoformat()
    if catalog.get_partition("publish_log", day, result.ssp) is None:
        catalog.set_partition("publish_log", day, result.ssp, lake.s3_uri(catalog.bucket, prefix))
    return key


def read_version(s3: Any, bucket: str, ssp: str, revenue_date: dt.date, version: str) -> pa.Table:
    """One published version of the revenue table, as written (lineage included)."""
    key = lake.version_prefix(TABLE, ssp, revenue_date, version) + PART
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise StorageError(f"cannot read version {version} at {key}: {exc}",
                           ssp=ssp, revenue_date=revenue_date) from exc
    return pq.read_table(io.BytesIO(body)).cast(schema.REVENUE)


def read_publish_log(s3: Any, bucket: str, ssp: str, revenue_date: dt.date) -> pa.Table:
    """Every publish of one (SSP, date), oldest fetch first."""
    log = lake.read_partition_files(s3, bucket, "publish_log", ssp, revenue_date, schema.PUBLISH_LOG)
    return log.sort_by([("fetched_at", "ascending")])
