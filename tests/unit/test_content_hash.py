import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssp_revenue.core import schema
from ssp_revenue.ingest.content import content_hash, encode
from ssp_revenue.ingest.normalise import with_lineage
from ssp_revenue.lake import publish

from .helpers import rows, table


def test_same_content_in_any_row_order_has_one_hash() -> None:
    data = rows(6)
    assert content_hash(table(data)) == content_hash(table(list(reversed(data))))


def test_one_millionth_of_a_yen_changes_the_hash() -> None:
    data = rows(6)
    moved = rows(6, row3={"revenue": data[3]["revenue"] + Decimal("0.000001")})
    assert content_hash(table(data)) != content_hash(table(moved))


def test_every_content_column_counts() -> None:
    base = content_hash(table(rows(3)))
    for column, value in [("media", "sports"), ("country", "US"), ("device", "ctv"), ("ad_unit", "u9"),
                          ("impressions", 1), ("clicks", 0), ("currency", "USD"),
                          ("revenue", Decimal("-1")), ("tz_policy", "ssp_date"),
                          ("revenue_date", dt.date(2026, 11, 6)), ("ssp", "other")]:
        assert content_hash(table(rows(3, row1={column: value}))) != base, column


def test_a_column_that_becomes_constant_still_changes_the_hash() -> None:
    data = rows(2, row1={"media": "sports"})
    assert content_hash(table(data)) != content_hash(table(rows(2)))


def test_duplicated_rows_count() -> None:
    data = rows(3)
    assert content_hash(table(data)) != content_hash(table([*data, data[0]]))
    assert content_hash(table([*data, data[0]])) != content_hash(table([*data, data[0], data[0]]))


def test_values_swapped_between_rows_change_the_hash() -> None:
    data = rows(3)
    swapped = rows(3, row0={"revenue": data[1]["revenue"]}, row1={"revenue": data[0]["revenue"]})
    assert content_hash(table(data)) != content_hash(table(swapped))


def test_chunking_and_lineage_do_not_count() -> None:
    data = rows(5)
    whole = table(data)
    chunked = pa.concat_tables([table(data[:2]), table(data[2:])])
    assert chunked["media"].num_chunks == 2
    assert content_hash(chunked) == content_hash(whole)
    full = with_lineage(whole, source_version="v", raw_object="s3://b/raw/x",
                        fetched_at=dt.datetime(2026, 11, 6, tzinfo=dt.UTC))
    assert content_hash(full) == content_hash(whole)


def test_encoding_does_not_count() -> None:
    whole = table(rows(4, row1={"media": "games"}))
    encoded = encode(whole)
    assert pa.types.is_dictionary(encoded.schema.field("media").type)
    assert pa.types.is_dictionary(encoded.schema.field("currency").type)
    assert encode(encoded).equals(encoded)
    assert content_hash(encoded) == content_hash(whole)
    # someone else's dictionary, with an unused and a repeated entry
    media = pa.DictionaryArray.from_arrays(pa.array([0, 2, 0, 0], pa.int32()), ["news", "x", "games", "news"])
    foreign = whole.set_column(2, pa.field("media", media.type), media)
    assert content_hash(foreign) == content_hash(whole)
    assert encode(foreign).column("media").to_pylist() == whole.column("media").to_pylist()


def test_an_empty_batch_has_a_hash() -> None:
    assert content_hash(table([])) != content_hash(table(rows(1)))


_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "media": st.sampled_from(["news", "games", "sports"]),
    "ad_unit": st.text(alphabet="ab_01", max_size=6),
    "impressions": st.integers(0, 10**12),
    "revenue": st.decimals(min_value=-10**9, max_value=10**9, places=6, allow_nan=False,
                           allow_infinity=False),
}
_rows = st.lists(st.fixed_dictionaries(_FIELDS), min_size=1, max_size=12).map(
    lambda specs: [{**row, **spec} for row, spec in zip(rows(len(specs)), specs, strict=True)])


@settings(max_examples=150, deadline=None)
@given(_rows, st.randoms(use_true_random=False))
def test_hash_ignores_order_only(data: list[dict[str, Any]], random: Any) -> None:
    shuffled = list(data)
    random.shuffle(shuffled)
    assert content_hash(table(data)) == content_hash(table(shuffled))


@settings(max_examples=150, deadline=None)
@given(_rows, st.data())
def test_any_changed_figure_changes_the_hash(data: list[dict[str, Any]], draw: Any) -> None:
    index = draw.draw(st.integers(0, len(data) - 1))
    field = draw.draw(st.sampled_from(sorted(_FIELDS)))
    changed = [dict(row) for row in data]
    changed[index][field] = draw.draw(_FIELDS[field].filter(lambda v: v != data[index][field]))
    assert content_hash(table(data)) != content_hash(table(changed))


def test_version_is_read_back_from_a_partition_location() -> None:
    loc = "s3://b/tables/revenue/revenue_date=2026-11-05/ssp=adpulse/version=0123abcd/"
    assert publish.version_of(loc) == "0123abcd"
    assert publish.version_of(None) is None
    assert publish.version_of("s3://b/elsewhere/") is None


@pytest.mark.parametrize("encoded", [False, True])
def test_parquet_is_stamped_with_hash_and_row_count(encoded: bool) -> None:
    content = encode(table(rows(5))) if encoded else table(rows(5))
    full = with_lineage(content, source_version="v", raw_object="s3://b/raw/x",
                        fetched_at=dt.datetime(2026, 11, 6, tzinfo=dt.UTC))
    body = publish.parquet_bytes(full, "f" * 64)
    meta = pq.read_metadata(io.BytesIO(body))
    assert meta.num_rows == 5
    assert meta.metadata[publish.META_VERSION] == b"f" * 64
    back = pq.read_table(io.BytesIO(body))
    assert back.column("revenue").to_pylist() == content.column("revenue").to_pylist()
    assert back.schema.remove_metadata().equals(schema.REVENUE.remove_metadata())
    assert meta.metadata[b"ssp_revenue.schema_version"] == schema.SCHEMA_VERSION.encode()
    assert back.column("source_version").to_pylist() == ["v"] * 5
