"""The load phase: publish a validated batch as a new immutable version, then switch.

1. hash the canonical content -> ``version``; the same figures give the same version;
2. write ``tables/revenue/.../version=<hash>/part-00000.parquet`` (skipped if a
   verified copy is already there);
3. verify it cheaply: object size, Parquet footer row count, schema and the
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
import hashlib
import io
import re
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from ssp_revenue import lake, schema
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.clock import Clock
from ssp_revenue.errors import StorageError
from ssp_revenue.normalise import Totals, canonical, totals_of, with_lineage

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


def content_hash(content: pa.Table) -> str:
    """sha256 of the canonical content (sorted, conformed, no lineage) as CSV text."""
    return canonical_hash(canonical(content))


def canonical_hash(ordered: pa.Table) -> str:
    """content_hash of a table already in canonical form (publishing sorts once)."""
    sink = io.BytesIO()
    pacsv.write_csv(ordered, sink)
    digest = hashlib.sha256(f"schema={schema.SCHEMA_VERSION}\n".encode())
    digest.update(sink.getvalue())
    return digest.hexdigest()


def version_of(location: str | None) -> str | None:
    if not location:
        return None
    match = _VERSION_IN_LOCATION.search(location)
    return match.group(1) if match else None


def parquet_bytes(table: pa.Table, digest: str) -> bytes:
    metadata = dict(table.schema.metadata or {})
    metadata[META_VERSION] = digest.encode()
    metadata[META_ROWS] = str(table.num_rows).encode()
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(metadata), sink, compression="snappy")
    return sink.getvalue()


class _S3RangeFile(io.RawIOBase):
    """Read-only, seekable view of an S3 object by range GETs (footer reads only)."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int) -> None:
        self.s3, self.bucket, self.key, self.size, self.pos = s3, bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        body = self.s3.get_object(
            Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end - 1}"
        )["Body"].read()
        self.pos += len(body)
        return bytes(body)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def verify_version(
    s3: Any, bucket: str, key: str, *, digest: str, rows: int, size: int | None = None
) -> bool:
    """True if the object at ``key`` is a complete copy of this version."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    length = int(head["ContentLength"])
    if size is not None and length != size:
        return False
    try:
        meta = pq.read_metadata(pa.PythonFile(_S3RangeFile(s3, bucket, key, length), mode="r"))
    except (pa.ArrowException, OSError):
        return False
    kv = meta.metadata or {}
    return (
        meta.num_rows == rows
        and kv.get(META_VERSION) == digest.encode()
        and meta.schema.to_arrow_schema().remove_metadata().equals(schema.REVENUE.remove_metadata())
    )


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
    ordered = canonical(content)
    digest = canonical_hash(ordered)
    version = digest[:VERSION_CHARS]
    if expected_version is not None and version != expected_version:
        raise StorageError(
            f"content hash {version} differs from the validated batch {expected_version}",
            ssp=ssp, revenue_date=revenue_date, file=raw_object,
        )
    bucket = catalog.bucket
    day = revenue_date.isoformat()
    key = lake.version_prefix(TABLE, ssp, revenue_date, version) + PART
    location = lake.s3_uri(bucket, lake.version_prefix(TABLE, ssp, revenue_date, version))
    current = catalog.get_partition(TABLE, day, ssp)
    previous = version_of(current.location) if current else None
    totals = totals_of(content)

    if previous != version:
        if not verify_version(s3, bucket, key, digest=digest, rows=content.num_rows):
            table = with_lineage(
                ordered, source_version=version, fetched_at=fetched_at,
                raw_object=lake.s3_uri(bucket, raw_object),
            )
            body = parquet_bytes(table, digest)
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            except ClientError as exc:
                raise StorageError(f"write {key}: {exc}", ssp=ssp, revenue_date=revenue_date) from exc
            if not verify_version(s3, bucket, key, digest=digest, rows=content.num_rows,
                                  size=len(body)):
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
                currency=_currency(content), s3=s3, catalog=catalog)
    return result


def logged(s3: Any, bucket: str, ssp: str, revenue_date: dt.date, version: str) -> bool:
    """Whether publish_log records any publish of ``version`` for the (SSP, date)."""
    prefix = lake.partition_prefix("publish_log", ssp, revenue_date)
    return any(k.endswith(f"-{version}.parquet") for k in lake.list_keys(s3, bucket, prefix))


def _currency(content: pa.Table) -> str:
    values = content["currency"].unique().to_pylist()
    return str(values[0]) if len(values) == 1 else ",".join(sorted(map(str, values)))


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
