"""The load phase: publish a validated batch as a new immutable version, then switch.

1. hash the content (:mod:`ssp_revenue.ingest.content`) -> ``version``; the same figures,
   in any row order or batching, give the same version;
2. write ``tables/revenue/.../version=<hash>/part-NNNNN.parquet`` (one file, or
   more for a day over ``ROWS_PER_FILE`` rows; the upload is skipped if a
   verified copy is already there);
3. verify it cheaply from its footers: row counts, schema, date statistics and
   the content hash stamped in their key-value metadata;
4. switch the Glue partition's location to it (create if absent);
5. append a ``publish_log`` row.

Ingest runs steps 1-3 for what it has just validated (:func:`stage_batches`) and
load runs 3-5 on those files (:func:`publish_batches` given them), so a day of one
record batch is read once; without staged files it runs them all from the raw report.

A crash between any two steps leaves the previous version live (or, after
step 4, the new one); a rerun redoes the missing steps and ends in the same
state, publish_log included: the partition's Parameters keep the version it
replaced, so a switch whose log row was lost is still logged as ``published``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import io
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from ssp_revenue.core import schema
from ssp_revenue.core.clock import Clock
from ssp_revenue.core.errors import StorageError
from ssp_revenue.ingest.content import ContentHasher, content_hash, encode
from ssp_revenue.ingest.normalise import Totals, totals_of, with_lineage
from ssp_revenue.lake import catalog as catalog_mod
from ssp_revenue.lake import logs, store
from ssp_revenue.lake.catalog import GlueCatalog

TABLE = "revenue"
PART = "part-00000.parquet"  # the first (for most versions, the only) part
VERSION_CHARS = 20
META_VERSION = b"ssp_revenue.content_hash"
META_ROWS = b"ssp_revenue.rows"
META_PARTS = b"ssp_revenue.parts"
# Rows per part file. At the ~12 bytes a row of a typical report's Parquet this is
# ~100 MiB a file: Athena reads files of 100 MiB-1 GiB best (fewer, larger objects
# to open; each file still splits by its row groups), and a day under this is one file.
ROWS_PER_FILE = 8_000_000
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
    """One part file in memory (tests, small tables); :class:`PartFiles` streams."""
    sink = io.BytesIO()
    with _part_writer(sink, table.schema) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(_stamp(table.schema, digest, table.num_rows, 1))
    return sink.getvalue()


def _part_writer(sink: Any, arrow_schema: pa.Schema) -> pq.ParquetWriter:
    """Snappy Parquet as the lake writes it.

    The Arrow schema is not stored: read back, the columns are the Parquet
    types (dictionary-encoded text comes back as plain strings, as Athena
    sees it). Min/max statistics are written for dates, counts, money and
    timestamps, not for text: text bounds would prune nothing within a
    partition, and they cost a third of the write.
    """
    with_stats = [f.name for f in schema.REVENUE if f.type != pa.string()]
    return pq.ParquetWriter(sink, arrow_schema, compression="snappy", store_schema=False,
                            write_statistics=with_stats)


def _stamp(arrow_schema: pa.Schema, digest: str, rows: int, parts: int) -> dict[bytes | str, bytes | str]:
    """A part's footer metadata: the version's content hash, this part's rows, the parts."""
    return {**(schema.REVENUE.metadata or {}), **(arrow_schema.metadata or {}),
            META_VERSION: digest.encode(), META_ROWS: str(rows).encode(), META_PARTS: str(parts).encode()}


@functools.cache
def written_schema() -> pa.Schema:
    """The schema of every batch the lake writes: content encoded (:func:`encode`), lineage.
    Built on first use, not at import (importing a DAG file must stay light)."""
    empty = encode(schema.NORMALISED.empty_table())
    return with_lineage(empty, source_version="", fetched_at=dt.datetime.fromtimestamp(0, dt.UTC),
                        raw_object="").schema


def parts_for(rows: int) -> int:
    """How many files a version of ``rows`` rows is written as: a function of the
    figures only, so every writer of one version writes the same files."""
    return max(1, -(-rows // ROWS_PER_FILE))


def part_name(part: int) -> str:
    return f"part-{part:05d}.parquet"


class PartFiles:
    """A version's part files, written row group by row group into a local directory.

    Rows go to part ``grain key mod parts``: which file a row lands in depends on
    the row alone, so two writers racing on one version (the same figures in
    another order or batching) write files with the same rows, and the partition
    is whole whichever copy of each part is last.
    """

    def __init__(self, directory: Path, parts: int) -> None:
        self.directory = directory
        self.parts = parts
        self.rows = [0] * parts
        self._writers = [_part_writer(str(directory / part_name(p)), written_schema()) for p in range(parts)]

    def write(self, table: pa.Table, grain: np.ndarray) -> None:
        if self.parts == 1:
            shares = [table]
        else:
            which = grain % np.uint64(self.parts)
            shares = [table.filter(pa.array(which == np.uint64(p))) for p in range(self.parts)]
        for part, share in enumerate(shares):
            if share.num_rows:
                self._writers[part].write_table(share)
                self.rows[part] += share.num_rows

    def close(self, digest: str) -> list[Path]:
        """Stamp every part's footer and close it; a part no row fell in is written empty."""
        for part, writer in enumerate(self._writers):
            writer.add_key_value_metadata(_stamp(written_schema(), digest, self.rows[part], self.parts))
            writer.close()
        return [self.directory / part_name(p) for p in range(self.parts)]

    def abort(self) -> None:
        for writer in self._writers:
            writer.close()


def verify_version(
    s3: Any, bucket: str, prefix: str, *, digest: str, rows: int, revenue_date: dt.date
) -> bool:
    """True if the objects under ``prefix`` are a complete copy of this version: every
    part there, each with the content hash stamp, the schema and date statistics,
    and their rows adding up, all from their footers.

    Not their sizes: a copy of the same figures in another row order (a racing
    publish) is just as complete and has other bytes.
    """
    keys = store.parquet_keys(s3, bucket, prefix)
    if not keys:
        return False
    found = 0
    for key in keys:
        meta = store.read_footer(s3, bucket, key)
        if meta is None:
            return False
        kv = meta.metadata or {}
        if not (kv.get(META_VERSION) == digest.encode()
                and int(kv.get(META_PARTS, b"1")) == len(keys)
                and meta.schema.to_arrow_schema().remove_metadata().equals(schema.REVENUE.remove_metadata())
                and _dates_are(meta, revenue_date)):
            return False
        found += meta.num_rows
    return found == rows


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
    """Publish one validated (SSP, date) batch held in memory (see :func:`publish_batches`)."""
    version = expected_version or content_hash(content)[:VERSION_CHARS]
    return publish_batches(content.to_batches(), ssp=ssp, revenue_date=revenue_date, fetched_at=fetched_at,
                           raw_object=raw_object, version=version, rows=content.num_rows, s3=s3,
                           catalog=catalog, clock=clock, report=report)


@dataclasses.dataclass
class _Scanned:
    digest: str
    totals: Totals
    currency: str
    parts: list[Path]


def _scan(batches: Iterable[pa.RecordBatch | pa.Table], *, version: str, rows: int,
          lineage: dict[str, Any], directory: Path | None, where: dict[str, Any]) -> _Scanned:
    """One pass over the batches: hash, totals, currencies; and the part files, if
    ``directory`` is given. Raises if the content is not the validated version."""
    hasher = ContentHasher()
    totals = Totals.zero()
    currencies: set[str] = set()
    files = PartFiles(directory, parts_for(rows)) if directory is not None else None
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            encoded = encode(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
            grain = hasher.update(encoded)
            totals = totals + totals_of(encoded)
            currencies.update(map(str, pc.unique(encoded["currency"]).cast(pa.string()).to_pylist()))
            if files is not None:
                files.write(with_lineage(encoded, source_version=version, **lineage), grain)
    except BaseException:
        if files is not None:
            files.abort()
        raise
    digest = hasher.hexdigest()
    if digest[:VERSION_CHARS] != version or hasher.rows != rows:
        if files is not None:
            files.abort()
        raise StorageError(
            f"content hash {digest[:VERSION_CHARS]} ({hasher.rows} rows) differs from the validated "
            f"batch {version} ({rows} rows)", **where)
    parts = files.close(digest) if files is not None else []
    return _Scanned(digest, totals, ",".join(sorted(currencies)), parts)


def _upload(s3: Any, bucket: str, prefix: str, parts: list[Path], digest: str, *, rows: int,
            ssp: str, revenue_date: dt.date) -> None:
    """Upload a version's part files, then read them back from their footers."""
    try:
        for path in parts:
            s3.upload_file(str(path), bucket, prefix + path.name, Config=store.UPLOAD)
    except (ClientError, S3UploadFailedError) as exc:
        raise StorageError(f"write {prefix}: {exc}", ssp=ssp, revenue_date=revenue_date) from exc
    if not verify_version(s3, bucket, prefix, digest=digest, rows=rows, revenue_date=revenue_date):
        # ours, or a racing publish's copy of the same figures
        raise StorageError(
            f"read-back of {prefix} does not match what was written; partition not switched",
            ssp=ssp, revenue_date=revenue_date,
        )


@dataclasses.dataclass(frozen=True)
class Staged:
    """A validated version written under its prefix, not switched to: what the switch needs."""

    digest: str
    totals: Totals
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "totals": self.totals.to_dict(), "currency": self.currency}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Staged:
        return cls(str(data["digest"]), Totals.from_dict(data["totals"]), str(data["currency"]))


def stage_batches(
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    ssp: str,
    revenue_date: dt.date,
    fetched_at: dt.datetime,
    raw_object: str,
    version: str,
    rows: int,
    s3: Any,
    bucket: str,
) -> Staged:
    """Write a validated batch as its version's files (steps 1-3), switching nothing.

    Readers never see a prefix no partition points to, so ingest writes it from the
    rows it has just validated, and load only switches (:func:`publish_batches` with
    ``staged``) without reading the report again. A version never switched to is vacuumed by
    the fetch time in its footer, like the leftovers of a publish that crashed.
    """
    where: dict[str, Any] = {"ssp": ssp, "revenue_date": revenue_date, "file": raw_object}
    prefix = store.version_prefix(TABLE, ssp, revenue_date, version)
    lineage = {"fetched_at": fetched_at, "raw_object": store.s3_uri(bucket, raw_object)}
    with tempfile.TemporaryDirectory(prefix="ssp-revenue-publish-") as scratch:
        scanned = _scan(batches, version=version, rows=rows, lineage=lineage, directory=Path(scratch),
                        where=where)
        if not verify_version(s3, bucket, prefix, digest=scanned.digest, rows=rows,
                              revenue_date=revenue_date):
            _upload(s3, bucket, prefix, scanned.parts, scanned.digest, rows=rows, ssp=ssp,
                    revenue_date=revenue_date)
    return Staged(scanned.digest, scanned.totals, scanned.currency)


def publish_batches(
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    ssp: str,
    revenue_date: dt.date,
    fetched_at: dt.datetime,
    raw_object: str,
    version: str,
    rows: int,
    s3: Any,
    catalog: GlueCatalog,
    clock: Clock,
    report: str = "",
    staged: Staged | None = None,
) -> PublishResult:
    """Publish one validated (SSP, date) batch, read one record batch at a time.
    Idempotent; see the module docstring.

    ``staged``: what :func:`stage_batches` wrote for this version. If its files are
    there and complete, the partition switches to them and ``batches`` is never
    read (pass a lazy iterable); if they are gone or incomplete (vacuumed, a lost
    upload), or the partition already holds this version, the batches are read
    and the whole protocol runs.

    ``version`` and ``rows`` are what validation found: the lineage names the
    version before the last row is hashed, and the pass fails, publishing
    nothing, if the rows turn out to be other figures. The part files are
    written to a local temporary directory and uploaded in multipart chunks, so
    memory holds one record batch and one upload chunk, not the day.
    ``report`` is the fetch's report identity (body sha256 and content facts): kept
    on the partition so the next fetch of the same report can skip the whole load.
    """
    day = revenue_date.isoformat()
    where: dict[str, Any] = {"ssp": ssp, "revenue_date": revenue_date, "file": raw_object}
    current = catalog.get_partition(TABLE, day, ssp)
    bucket = catalog.bucket
    prefix = store.version_prefix(TABLE, ssp, revenue_date, version)
    location = store.s3_uri(bucket, prefix)
    previous = version_of(current.location) if current else None
    lineage = {"fetched_at": fetched_at, "raw_object": store.s3_uri(bucket, raw_object)}

    def complete(digest: str) -> bool:
        return verify_version(s3, bucket, prefix, digest=digest, rows=rows, revenue_date=revenue_date)

    def upload(parts: list[Path], digest: str) -> None:
        _upload(s3, bucket, prefix, parts, digest, rows=rows, ssp=ssp, revenue_date=revenue_date)

    if staged is not None and previous != version and staged.digest[:VERSION_CHARS] == version \
            and complete(staged.digest):
        catalog.set_partition(TABLE, day, ssp, location,
                              _parameters(version, staged.totals, staged.currency, previous, report))
        if complete(staged.digest):
            return _switched(PublishResult(ssp, revenue_date, version, previous, "published", location,
                                           staged.totals), staged.currency, fetched_at=fetched_at,
                             raw_object=raw_object, s3=s3, catalog=catalog, clock=clock)
        # Vacuumed between the check and the switch (a superseded version coming back):
        # write it again at once from the batches, below.

    if previous == version:
        assert current is not None
        # Same figures, maybe from other bytes or in a lake older than these parameters.
        scanned = _scan(batches, version=version, rows=rows, lineage=lineage, directory=None, where=where)
        params = _parameters(version, scanned.totals, scanned.currency,
                             current.parameters.get("previous_version") or None,
                             report or current.parameters.get("report", ""))
        if params != current.parameters:
            catalog.set_partition(TABLE, day, ssp, current.location, params)
            current = dataclasses.replace(current, parameters=params)
        return _log_unchanged(current, ssp=ssp, revenue_date=revenue_date, fetched_at=fetched_at,
                              raw_object=raw_object, s3=s3, catalog=catalog, clock=clock)

    with tempfile.TemporaryDirectory(prefix="ssp-revenue-publish-") as scratch:
        # Written locally whether or not a copy is already there: the pass checks the figures.
        scanned = _scan(batches, version=version, rows=rows, lineage=lineage, directory=Path(scratch),
                        where=where)
        if not complete(scanned.digest):
            upload(scanned.parts, scanned.digest)
        catalog.set_partition(TABLE, day, ssp, location,
                              _parameters(version, scanned.totals, scanned.currency, previous, report))
        if not complete(scanned.digest):
            # A superseded version coming back, vacuumed between our check and the switch:
            # write it again at once (readers saw an empty partition for that long at most).
            upload(scanned.parts, scanned.digest)

    result = PublishResult(ssp, revenue_date, version, previous, "published", location, scanned.totals)
    return _switched(result, scanned.currency, fetched_at=fetched_at, raw_object=raw_object, s3=s3,
                     catalog=catalog, clock=clock)


def _switched(result: PublishResult, currency: str, *, fetched_at: dt.datetime, raw_object: str, s3: Any,
              catalog: GlueCatalog, clock: Clock) -> PublishResult:
    """Step 5: the publish_log row of a switch."""
    log_publish(result, fetched_at=fetched_at, published_at=clock.now(),
                raw_object=store.s3_uri(catalog.bucket, raw_object), currency=currency, s3=s3,
                catalog=catalog)
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
                raw_object=store.s3_uri(catalog.bucket, raw_object),
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
    """One published version of the revenue table, as written (lineage included), all parts."""
    prefix = store.version_prefix(TABLE, ssp, revenue_date, version)
    try:
        keys = store.parquet_keys(s3, bucket, prefix)
        if not keys:
            raise StorageError(f"version {version} has no files under {prefix}", ssp=ssp,
                               revenue_date=revenue_date)
        return store.read_parquet_files(s3, bucket, schema.REVENUE, keys)
    except ClientError as exc:
        raise StorageError(f"cannot read version {version} at {prefix}: {exc}",
                           ssp=ssp, revenue_date=revenue_date) from exc


def read_publish_log(s3: Any, catalog: GlueCatalog, ssp: str, revenue_date: dt.date) -> pa.Table:
    """Every publish of one (SSP, date), oldest fetch first."""
    log = logs.read(s3, catalog, "publish_log", ssp, revenue_date, schema.PUBLISH_LOG)
    return log.sort_by([("fetched_at", "ascending"), ("published_at", "ascending")])
