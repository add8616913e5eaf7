"""The append-only tables (publish_log, fetch_log, pipeline_events, incidents,
revenue_adjustments): append a file, read a partition, compact a partition.

A partition's rows are the Parquet files directly under its Glue location.
Appends write one small file there. Compaction rewrites them as one file in a
new *generation* prefix (a sibling, never nested: Athena reads a location's
subfolders too) and switches the partition's location to it, the same atomic
step a publish uses: a reader lists the old files or the new one, never both,
never neither. The old files stay until vacuum removes them after the reader
grace period.

Crash ordering of a compaction: (1) list the live files; (2) write the
generation (named by the hash of the files it holds, so a rerun writes the same
one); (3) verify it; (4) copy in any file appended since (1); (5) switch;
(6) copy in any file appended between (4) and (5). An append puts its file
under the partition's first prefix, then looks up the live location: absent, it
registers that prefix; moved (compacted before or meanwhile), it copies its file
into the live generation unless the compacted file already holds it, and the
copy left behind is vacuumed once the generation holds it. Both sides put with
If-None-Match, so a file is never copied twice, and no row an append has
returned from is ever lost or doubled (one killed before its copy leaves a file
no reader sees, which vacuum keeps: the live generation does not hold it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog

COMPACTED = "part-00000.parquet"
META_SOURCES = b"ssp_revenue.compacted_from"
META_COMPACTED_AT = b"ssp_revenue.compacted_at"
# Compacted by the maintenance DAG; revenue_adjustments is not: a batch claims its sequence
# number by its key, which must stay where it was put.
COMPACTABLE = ("publish_log", "fetch_log", "pipeline_events", "incidents")
# Each table's "when was this row written" column: what compaction orders by and --as-of filters on.
WRITTEN_AT = {
    "publish_log": "published_at",
    "fetch_log": "fetched_at",
    "pipeline_events": "recorded_at",
    "incidents": "recorded_at",
    "revenue_adjustments": "detected_at",
}


def generation_prefix(table: str, ssp: str, revenue_date: dt.date, generation: str) -> str:
    return (f"tables/{store.partition_value(table)}/generation={store.partition_value(generation)}/"
            f"revenue_date={revenue_date.isoformat()}/ssp={store.partition_value(ssp)}/")


def parquet(table: pa.Table, metadata: dict[bytes, bytes] | None = None) -> bytes:
    sink = io.BytesIO()
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    pq.write_table(table, sink)
    return sink.getvalue()


def live_prefix(catalog: GlueCatalog, table: str, ssp: str, revenue_date: dt.date) -> str | None:
    found = catalog.get_partition(table, revenue_date.isoformat(), ssp)
    return store.split_uri(found.location)[1].rstrip("/") + "/" if found else None


def append(s3: Any, catalog: GlueCatalog, table: str, ssp: str, revenue_date: dt.date,
           rows: pa.Table, *, at: dt.datetime, tag: str | None = None) -> str:
    """Write ``rows`` as one file of the partition (created if absent); returns its key.

    The file is named ``<at>-<tag>`` (tag: the body's hash unless given), so a
    retried append writes the same name once and adds nothing.
    """
    body = parquet(rows)
    name = f"{store.stamp(at)}-{tag or hashlib.sha256(body).hexdigest()[:12]}.parquet"
    # Put first, where a partition that was never compacted lives (every date still
    # appended to by the scheduled runs), then look where it lives: one lookup an append,
    # not one before and one after.
    prefix = store.partition_prefix(table, ssp, revenue_date)
    key = prefix + name
    store.put_once(s3, catalog.bucket, key, body)
    now = live_prefix(catalog, table, ssp, revenue_date)
    if now is None:
        catalog.set_partition(table, revenue_date.isoformat(), ssp, store.s3_uri(catalog.bucket, prefix))
    elif now != prefix and name not in compacted_sources(s3, catalog.bucket, now):
        # Compacted (before or meanwhile): the live generation gets the file too; the one
        # left at the old prefix is the vacuum's once the generation holds it.
        store.put_once(s3, catalog.bucket, now + name, body)
        return now + name
    return key


files = store.parquet_keys


def read(s3: Any, catalog: GlueCatalog, table: str, ssp: str, revenue_date: dt.date,
         schema: pa.Schema) -> pa.Table:
    """Every row of the partition as its live location holds it."""
    prefix = live_prefix(catalog, table, ssp, revenue_date)
    if prefix is None:
        return schema.empty_table()
    return store.read_parquet_files(s3, catalog.bucket, schema, files(s3, catalog.bucket, prefix))


def compacted_sources(s3: Any, bucket: str, prefix: str) -> set[str]:
    """The file names a generation's compacted file holds (empty if it has none)."""
    meta = store.read_footer(s3, bucket, prefix + COMPACTED)
    if meta is None:
        return set()
    return set(json.loads((meta.metadata or {}).get(META_SOURCES, b"[]")))


@dataclasses.dataclass(frozen=True)
class Compaction:
    table: str
    ssp: str
    revenue_date: dt.date
    files_before: int
    rows: int
    location: str | None  # the new generation's prefix; None when nothing needed compacting


def compacted_at(s3: Any, bucket: str, prefix: str) -> dt.datetime | None:
    """When a generation was compacted (our clock, not S3's), or None for a prefix of appends."""
    meta = store.read_footer(s3, bucket, prefix + COMPACTED)
    stamp = (meta.metadata or {}).get(META_COMPACTED_AT) if meta is not None else None
    return dt.datetime.fromisoformat(stamp.decode()) if stamp else None


def held(s3: Any, bucket: str, prefix: str) -> set[str]:
    """The append files whose rows a prefix holds: its compacted file's sources and its own files."""
    names = {k[len(prefix):] for k in files(s3, bucket, prefix)}
    if COMPACTED in names:
        names = (names - {COMPACTED}) | compacted_sources(s3, bucket, prefix)
    return names


def compact_partition(s3: Any, catalog: GlueCatalog, table: str, ssp: str, revenue_date: dt.date,
                      schema: pa.Schema, *, now: dt.datetime) -> Compaction:
    """Rewrite a partition's files as one, in a new generation; see the module docstring."""
    bucket = catalog.bucket
    old = live_prefix(catalog, table, ssp, revenue_date)
    if old is None:
        return Compaction(table, ssp, revenue_date, 0, 0, None)
    listed = files(s3, bucket, old)
    names = [k[len(old):] for k in listed]
    if len(names) <= 1:
        return Compaction(table, ssp, revenue_date, len(names), 0, None)
    # What the files hold, whether plain appends or an earlier generation's compacted file.
    holds: list[str] = []
    for name in names:
        holds.extend(sorted(compacted_sources(s3, bucket, old)) if name == COMPACTED else [name])
    rows = store.read_parquet_files(s3, bucket, schema, listed)
    order = WRITTEN_AT.get(table)
    if order and order in rows.column_names:
        rows = rows.sort_by([(order, "ascending")])
    generation = hashlib.sha256("\n".join(sorted(holds)).encode()).hexdigest()[:16]
    new = generation_prefix(table, ssp, revenue_date, generation)
    body = parquet(rows, {META_SOURCES: json.dumps(sorted(holds)).encode(),
                          META_COMPACTED_AT: now.isoformat().encode()})
    store.put_once(s3, bucket, new + COMPACTED, body)
    meta = store.read_footer(s3, bucket, new + COMPACTED)
    if meta is None or meta.num_rows != rows.num_rows:
        from ssp_revenue.core.errors import StorageError

        raise StorageError(f"compacted {new}{COMPACTED} does not read back as {rows.num_rows} rows",
                           ssp=ssp, revenue_date=revenue_date)
    _carry_late(s3, bucket, old, new, set(names))
    catalog.set_partition(table, revenue_date.isoformat(), ssp, store.s3_uri(bucket, new))
    _carry_late(s3, bucket, old, new, set(names))
    return Compaction(table, ssp, revenue_date, len(names), rows.num_rows, new)


def _carry_late(s3: Any, bucket: str, old: str, new: str, compacted: set[str]) -> None:
    """Copy into the new generation every file appended to the old one after it was listed."""
    for key in files(s3, bucket, old):
        name = key[len(old):]
        if name not in compacted:
            store.put_once(s3, bucket, new + name, s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def compact_table(s3: Any, catalog: GlueCatalog, table: str, schema: pa.Schema, *,
                  before: dt.date, now: dt.datetime) -> list[Compaction]:
    """Compact every partition of a closed date (before ``before``) that has more than one file.

    A partition already compacted is looked at again only if appends came after
    (a manual rerun of an old date): that costs one listing per partition.
    """
    done = []
    for partition in catalog.partitions(table):
        day = dt.date.fromisoformat(partition.revenue_date)
        if day >= before:
            continue
        result = compact_partition(s3, catalog, table, partition.ssp, day, schema, now=now)
        if result.location is not None:
            done.append(result)
    return done
