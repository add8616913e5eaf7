import datetime as dt
from decimal import Decimal

from ssp_revenue import publish
from ssp_revenue.normalise import with_lineage

from .helpers import rows, table


def test_same_content_in_any_row_order_has_one_hash() -> None:
    data = rows(6)
    assert publish.content_hash(table(data)) == publish.content_hash(table(list(reversed(data))))


def test_one_millionth_of_a_yen_changes_the_hash() -> None:
    data = rows(6)
    moved = rows(6, row3={"revenue": data[3]["revenue"] + Decimal("0.000001")})
    assert publish.content_hash(table(data)) != publish.content_hash(table(moved))


def test_every_grain_column_counts() -> None:
    base = publish.content_hash(table(rows(3)))
    for column, value in [("media", "sports"), ("country", "US"), ("device", "ctv"),
                          ("impressions", 1), ("clicks", 0), ("currency", "USD")]:
        assert publish.content_hash(table(rows(3, row1={column: value}))) != base, column


def test_version_is_read_back_from_a_partition_location() -> None:
    loc = "s3://b/tables/revenue/revenue_date=2026-11-05/ssp=adpulse/version=0123abcd/"
    assert publish.version_of(loc) == "0123abcd"
    assert publish.version_of(None) is None
    assert publish.version_of("s3://b/elsewhere/") is None


def test_parquet_is_stamped_with_hash_and_row_count() -> None:
    import io

    import pyarrow.parquet as pq

    content = table(rows(5))
    full = with_lineage(content, source_version="v", raw_object="s3://b/raw/x",
                        fetched_at=dt.datetime(2026, 11, 6, tzinfo=dt.UTC))
    body = publish.parquet_bytes(full, "f" * 64)
    meta = pq.read_metadata(io.BytesIO(body))
    assert meta.num_rows == 5
    assert meta.metadata[publish.META_VERSION] == b"f" * 64
    assert pq.read_table(io.BytesIO(body)).column("revenue").to_pylist() == content.column("revenue").to_pylist()
