import datetime as dt
import gzip
from decimal import Decimal

import pyarrow as pa
import pytest

from ssp_revenue.core import schema
from ssp_revenue.core.errors import MalformedReport, SchemaDrift
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors.async_job import AsyncJobConnector

from .helpers import CONFIG, DAY, report_body

COLUMNS = {
    "date": ["2026-11-05", "2026-11-05"],
    "site": ["news", "sports"],
    "ad_unit_code": ["news_u1", "sports_u1"],
    "country_code": ["JP", "US"],
    "device_category": ["mobile", "desktop"],
    "impressions": [1000, 2000],
    "clicks": [3, 4],
    "revenue_micros": [1_234_567, -9_000_001],
    "currency": ["JPY", "JPY"],
}


def test_micros_become_exact_decimals_including_negative_and_large() -> None:
    arr = normalise.micros_to_money(pa.array([1, -1, 123_456_789_012_345, 0], pa.int64()))
    assert arr.type == schema.MONEY
    assert arr.to_pylist() == [
        Decimal("0.000001"), Decimal("-0.000001"), Decimal("123456789.012345"), Decimal("0E-6")]


def test_parse_maps_columns_and_keeps_report_order() -> None:
    stated = {"rows": 2, "impressions": 3000, "clicks": 7, "revenue_micros": 1_234_567 - 9_000_001}
    parsed = AsyncJobConnector.parse(CONFIG, report_body(COLUMNS), {"totals": stated}, DAY)
    assert parsed.table.schema.equals(schema.NORMALISED)
    assert parsed.table.column("media").to_pylist() == ["news", "sports"]
    assert parsed.table.column("revenue").to_pylist() == [Decimal("1.234567"), Decimal("-9.000001")]
    assert parsed.stated_totals is not None
    assert parsed.stated_totals["revenue"] == Decimal("-7.765434")


def test_a_bad_cell_names_its_row() -> None:
    cols = {k: list(v) for k, v in COLUMNS.items()}
    cols["revenue_micros"] = ["1", "12x45"]
    with pytest.raises(MalformedReport) as info:
        AsyncJobConnector.parse(CONFIG, report_body(cols), {}, DAY)
    assert info.value.row == 2
    assert "revenue_micros" in str(info.value)


def test_empty_cells_are_refused_not_read_as_null() -> None:
    cols = {k: list(v) for k, v in COLUMNS.items()}
    cols["clicks"] = ["", "4"]
    with pytest.raises(MalformedReport) as info:
        AsyncJobConnector.parse(CONFIG, report_body(cols), {}, DAY)
    assert info.value.row == 1


def test_renamed_column_is_schema_drift_before_rows_are_read() -> None:
    cols = {("revenue" if k == "revenue_micros" else k): v for k, v in COLUMNS.items()}
    with pytest.raises(SchemaDrift, match=r"missing \['revenue_micros'\].*unexpected \['revenue'\]"):
        AsyncJobConnector.parse(CONFIG, report_body(cols), {}, DAY)


def test_truncated_gzip_is_malformed() -> None:
    body = report_body(COLUMNS)
    with pytest.raises(MalformedReport, match="truncated"):
        AsyncJobConnector.parse(CONFIG, body[: len(body) // 2], {}, DAY)


def test_html_error_page_is_not_read_as_a_report() -> None:
    body = gzip.compress(b"<html><body>Service unavailable</body></html>")
    with pytest.raises(SchemaDrift):
        AsyncJobConnector.parse(CONFIG, body, {}, DAY)


def test_lineage_columns_complete_the_canonical_schema() -> None:
    parsed = AsyncJobConnector.parse(CONFIG, report_body(COLUMNS), {}, DAY)
    at = dt.datetime(2026, 11, 6, tzinfo=dt.UTC)
    full = normalise.with_lineage(parsed.table, source_version="v1", fetched_at=at,
                                  raw_object="s3://b/raw/x")
    assert full.schema.equals(schema.REVENUE)
    assert set(full.column("source_version").to_pylist()) == {"v1"}
