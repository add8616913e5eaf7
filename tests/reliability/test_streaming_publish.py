"""Publishing a day a batch at a time: the rows, not the batching, decide what is written.

A day in one batch and the same rows shuffled into many batches publish one
version with the same rows. A day over ``ROWS_PER_FILE`` is written as several
part files, each row's file chosen by its grain key: two writers of the same
figures in other orders write parts with the same rows, so a partition
holding some parts of each is still exactly the version.
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ssp_revenue.core.clock import FixedClock
from ssp_revenue.core.errors import StorageError
from ssp_revenue.ingest.content import ContentHasher, content_hash, encode
from ssp_revenue.ingest.normalise import with_lineage
from ssp_revenue.lake import publish, store
from ssp_revenue.operate import runtime
from tests.unit.helpers import DAY, rows, table

pytestmark = pytest.mark.integration
AT = dt.datetime(2026, 11, 6, tzinfo=dt.UTC)


def _services(lake_settings: Any) -> Any:
    services = runtime.services_for(lake_settings, clock=FixedClock(AT))
    runtime.bootstrap(services)
    return services


def _day(n: int) -> list[dict[str, Any]]:
    data = rows(n)
    for i, row in enumerate(data):
        row["media"] = ("news", "games", "sports")[i % 3]
        row["device"] = ("mobile", "desktop")[i % 2]
    return data


def _batches(data: list[dict[str, Any]], seed: int) -> list[pa.RecordBatch]:
    shuffled = data[:]
    random.Random(seed).shuffle(shuffled)
    out, start, rng = [], 0, random.Random(seed + 1)
    while start < len(shuffled):
        size = rng.randint(1, 60)
        out.extend(table(shuffled[start:start + size]).to_batches())
        start += size
    return out


def _publish(services: Any, batches: list[pa.RecordBatch], version: str, rows_: int) -> Any:
    return publish.publish_batches(batches, ssp="adpulse", revenue_date=DAY, fetched_at=AT,
                                   raw_object="raw/x", version=version, rows=rows_, s3=services.s3,
                                   catalog=services.catalog, clock=services.clock)


def _published_rows(services: Any, version: str) -> list[tuple[Any, ...]]:
    got = publish.read_version(services.s3, services.catalog.bucket, "adpulse", DAY, version)
    content = got.select(table([]).column_names).to_pylist()
    return sorted(tuple(r.values()) for r in content)


def test_many_shuffled_batches_publish_the_rows_of_one_batch(lake_settings: Any) -> None:
    services = _services(lake_settings)
    data = _day(400)
    version = content_hash(table(data))[:publish.VERSION_CHARS]
    first = _publish(services, _batches(data, seed=7), version, len(data))
    assert first.outcome == "published" and first.version == version
    assert _published_rows(services, version) == sorted(tuple(r.values()) for r in data)
    again = _publish(services, table(data).to_batches(), version, len(data))
    assert (again.outcome, again.version) == ("unchanged", version)


def test_other_figures_than_validated_publish_nothing(lake_settings: Any) -> None:
    services = _services(lake_settings)
    data = _day(50)
    version = content_hash(table(data))[:publish.VERSION_CHARS]
    moved = _day(50)
    moved[30]["clicks"] += 1
    with pytest.raises(StorageError, match="differs from the validated"):
        _publish(services, _batches(moved, seed=3), version, len(data))
    assert services.catalog.get_partition(publish.TABLE, DAY.isoformat(), "adpulse") is None
    assert store.list_keys(services.s3, services.catalog.bucket, store.partition_prefix(publish.TABLE, "adpulse", DAY)) == []


def _parts_written_locally(data: list[dict[str, Any]], seed: int, version: str, directory: Path) -> list[Path]:
    files = publish.PartFiles(directory, publish.parts_for(len(data)))
    hasher = ContentHasher()
    for batch in _batches(data, seed):
        encoded = encode(pa.Table.from_batches([batch]))
        grain = hasher.update(encoded)
        files.write(with_lineage(encoded, source_version=version, fetched_at=AT, raw_object="s3://other/raw"),
                    grain)
    return files.close(hasher.hexdigest())


def test_a_day_over_the_file_size_is_split_and_racing_copies_agree_part_by_part(
        lake_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "ROWS_PER_FILE", 100)
    services = _services(lake_settings)
    data = _day(450)
    digest = content_hash(table(data))
    version = digest[:publish.VERSION_CHARS]
    result = _publish(services, _batches(data, seed=1), version, len(data))
    bucket, prefix = services.catalog.bucket, store.version_prefix(publish.TABLE, "adpulse", DAY, version)
    keys = store.parquet_keys(services.s3, bucket, prefix)
    assert [k.rsplit("/", 1)[1] for k in keys] == [publish.part_name(p) for p in range(5)]
    assert result.totals.rows == 450
    assert _published_rows(services, version) == sorted(tuple(r.values()) for r in data)

    # Another writer of the same figures, in another order, overwrites two of the parts.
    with tempfile.TemporaryDirectory() as scratch:
        theirs = _parts_written_locally(data, seed=99, version=version, directory=Path(scratch))
        for path in (theirs[1], theirs[3]):
            services.s3.upload_file(str(path), bucket, prefix + path.name)
    assert publish.verify_version(services.s3, bucket, prefix, digest=digest, rows=450, revenue_date=DAY)
    assert _published_rows(services, version) == sorted(tuple(r.values()) for r in data)
    again = _publish(services, _batches(data, seed=5), version, len(data))
    assert again.outcome == "unchanged"


def test_a_missing_part_is_not_a_complete_version(lake_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish, "ROWS_PER_FILE", 100)
    services = _services(lake_settings)
    data = _day(250)
    digest = content_hash(table(data))
    version = digest[:publish.VERSION_CHARS]
    _publish(services, _batches(data, seed=2), version, len(data))
    bucket, prefix = services.catalog.bucket, store.version_prefix(publish.TABLE, "adpulse", DAY, version)
    services.s3.delete_object(Bucket=bucket, Key=prefix + publish.part_name(1))
    assert not publish.verify_version(services.s3, bucket, prefix, digest=digest, rows=250, revenue_date=DAY)
