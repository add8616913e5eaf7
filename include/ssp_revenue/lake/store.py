"""The lake's object layout on S3, and the write-once raw and quarantine areas.

    raw/ssp=S/revenue_date=D/<sha256>.<ext>                 each distinct body once
    quarantine/ssp=S/revenue_date=D/fetched_at=T/<sha256>.json
    tables/<table>/revenue_date=D/ssp=S/version=<hash>/part-*.parquet
    tables/<log>/revenue_date=D/ssp=S/<stamp>-<id>.parquet   append-only, as written
    tables/<log>/generation=<g>/revenue_date=D/ssp=S/part-00000.parquet   compacted

Lakes written before raw bodies were stored once hold
``raw/ssp=S/revenue_date=D/fetched_at=T/<sha256>.<ext>``: those keys are named
by publish_log and the rows' lineage and are still read as they are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from ssp_revenue.core.errors import PipelineError, StorageError

if TYPE_CHECKING:
    from ssp_revenue.ingest.connectors.base import ReportBody

# Large objects go up in 16 MiB chunks, two at a time: never read whole into memory.
UPLOAD = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024,
                        max_concurrency=2)
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:+-]{1,128}$")


def partition_value(value: str) -> str:
    """Anything from outside that becomes part of a key or DDL passes a strict pattern."""
    if not SAFE_VALUE.fullmatch(value) or ".." in value:
        raise ValueError(f"unsafe partition value {value!r}")
    return value


def stamp(instant: dt.datetime) -> str:
    """A fetched_at stamp for keys: UTC, sortable, no characters S3 or Hive dislike."""
    return instant.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def raw_key(ssp: str, revenue_date: dt.date, digest: str, ext: str) -> str:
    """One key per distinct body of an (SSP, date): a refetch of the same bytes lands nowhere new."""
    return f"raw/ssp={partition_value(ssp)}/revenue_date={revenue_date.isoformat()}/{digest}.{ext}"


def quarantine_key(ssp: str, revenue_date: dt.date, fetched_at: dt.datetime, digest: str) -> str:
    return (
        f"quarantine/ssp={partition_value(ssp)}/revenue_date={revenue_date.isoformat()}/"
        f"fetched_at={stamp(fetched_at)}/{digest}.json"
    )


def partition_prefix(table: str, ssp: str, revenue_date: dt.date) -> str:
    return (
        f"tables/{partition_value(table)}/revenue_date={revenue_date.isoformat()}/"
        f"ssp={partition_value(ssp)}/"
    )


def version_prefix(table: str, ssp: str, revenue_date: dt.date, version: str) -> str:
    return partition_prefix(table, ssp, revenue_date) + f"version={partition_value(version)}/"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def put_once(s3: Any, bucket: str, key: str, body: bytes, **extra: Any) -> bool:
    """Conditional put (If-None-Match: *). True if written, False if the key existed."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", **extra)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
            return False
        raise StorageError(f"put s3://{bucket}/{key} failed: {code}") from exc
    return True


@dataclasses.dataclass(frozen=True)
class LandedBody:
    key: str
    sha256: str
    size: int
    stored: bool  # False: the same bytes were already landed for this (SSP, date)


def land_raw(
    s3: Any,
    bucket: str,
    *,
    ssp: str,
    revenue_date: dt.date,
    body: ReportBody,
    extension: str,
    facts: Mapping[str, Any],
) -> LandedBody:
    """Store a fetched body untouched, named by its sha256, once per (SSP, date).

    The first landing's facts go beside it; every fetch's own facts are its
    fetch_log row (the parse reads those, not these). A body that outgrew memory
    is uploaded from its file in multipart chunks. That upload cannot be
    conditional, so two fetches racing on one new body may both write it: the
    same bytes under the same key, the later one's facts beside them.
    """
    digest = body.sha256
    key = raw_key(ssp, revenue_date, digest, extension)
    if exists(s3, bucket, key):  # do not upload a large body only to have the put refused
        return LandedBody(key, digest, body.size, False)
    metadata = {"report-facts": json.dumps(facts, sort_keys=True, default=str)}
    if body.path is None:
        stored = put_once(s3, bucket, key, body.read(), Metadata=metadata)
    else:
        try:
            s3.upload_file(body.path, bucket, key, ExtraArgs={"Metadata": metadata}, Config=UPLOAD)
        except (ClientError, S3UploadFailedError) as exc:
            raise StorageError(f"put s3://{bucket}/{key} failed: {exc}") from exc
        stored = True
    return LandedBody(key, digest, body.size, stored)


def exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise StorageError(f"head s3://{bucket}/{key} failed: {exc}") from exc
    return True


def read_raw(s3: Any, bucket: str, key: str) -> tuple[bytes, dict[str, Any]]:
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        raise StorageError(f"cannot read raw object s3://{bucket}/{key}: {exc}") from exc
    facts = json.loads(obj.get("Metadata", {}).get("report-facts", "{}"))
    return obj["Body"].read(), facts


def raw_facts(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The facts landed beside a raw body (its first landing's), without reading the body."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        raise StorageError(f"cannot read raw object s3://{bucket}/{key}: {exc}") from exc
    facts: dict[str, Any] = json.loads(head.get("Metadata", {}).get("report-facts", "{}"))
    return facts


def open_raw(s3: Any, bucket: str, key: str) -> Any:
    """A raw body as a stream from its first byte (read as it arrives, never whole)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        raise StorageError(f"cannot read raw object s3://{bucket}/{key}: {exc}") from exc


def quarantine(
    s3: Any,
    bucket: str,
    *,
    error: PipelineError,
    raw_object: str,
    fetched_at: dt.datetime,
    quarantined_at: dt.datetime,
    details: list[str],
) -> str:
    """Record a rejected batch and why, pointing at its raw body (which is never deleted)."""
    assert error.ssp and error.revenue_date
    digest = raw_object.rsplit("/", 1)[-1].split(".", 1)[0]
    key = quarantine_key(error.ssp, error.revenue_date, fetched_at, digest)
    record = {
        "ssp": error.ssp,
        "revenue_date": error.revenue_date.isoformat(),
        "reason": error.reason.value,
        "error": str(error),
        "row": error.row,
        "details": details,
        "raw_object": s3_uri(bucket, raw_object),
        "fetched_at": fetched_at.isoformat(),
        "quarantined_at": quarantined_at.isoformat(),
    }
    put_once(s3, bucket, key, json.dumps(record, indent=2, sort_keys=True).encode(),
             ContentType="application/json")
    return key


# GETs in flight when reading many objects: a log partition of the open window is one small
# file per fetch, so a read is that many round trips (boto3's clients are thread-safe).
READ_THREADS = 8

_Item = TypeVar("_Item")
_Read = TypeVar("_Read")


def read_each(read: Callable[[_Item], _Read], items: Iterable[_Item]) -> list[_Read]:
    """``read`` of every item, in the items' order, READ_THREADS at a time.

    For reads of many small objects (a month's partitions, a log's files): each is a
    few round trips to S3 or Glue, so their time is latency, which threads overlap
    (boto3 clients are thread-safe and release the GIL while a request waits).
    """
    todo = list(items)
    if len(todo) < 2:
        return [read(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(todo))) as pool:
        return list(pool.map(read, todo))


def read_parquet_files(s3: Any, bucket: str, schema: pa.Schema, keys: list[str]) -> pa.Table:
    """These Parquet objects, in this order, as one table of ``schema``."""

    def read(key: str) -> pa.Table:
        return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))

    tables = read_each(read, keys)
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables).cast(schema)


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


def parquet_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The Parquet objects directly under ``prefix`` (not in its subfolders), in key order."""
    return sorted(k for k in list_keys(s3, bucket, prefix)
                  if k.endswith(".parquet") and "/" not in k[len(prefix):])


def list_objects(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under ``prefix`` as S3 lists it (Key, ETag, Size, ...), all pages."""
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return [obj["Key"] for obj in list_objects(s3, bucket, prefix)]


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create the lake bucket if absent (local stack; in AWS it is provisioned once)."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError:
        pass
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou", "BucketAlreadyExists"
        ):
            raise


def read_location(s3: Any, location: str, schema: pa.Schema) -> pa.Table:
    """The Parquet files a partition location (``s3://bucket/prefix/``) points at, as one table."""
    bucket, prefix = split_uri(location)
    return read_parquet_files(s3, bucket, schema, parquet_keys(s3, bucket, prefix))
