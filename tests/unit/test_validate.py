from decimal import Decimal

import pytest

from ssp_revenue.core.errors import ValidationFailed
from ssp_revenue.ingest.validate import validate

from .helpers import CONFIG, DAY, parsed, rows

FILE = "raw/ssp=adpulse/revenue_date=2026-11-05/x.csv.gz"


def check(report):  # type: ignore[no-untyped-def]
    return validate(report, config=CONFIG, revenue_date=DAY, file=FILE)


def test_a_good_batch_passes_with_exact_totals() -> None:
    result = check(parsed(rows(4)))
    assert result.totals.rows == 4
    assert result.totals.revenue == Decimal("123.456789") * 4 + 6


@pytest.mark.parametrize("changes,needle", [
    ({"row2": {"ad_unit": "u1"}}, "compound_columns_to_be_unique"),
    ({"row1": {"revenue": Decimal("-0.000001")}}, "revenue"),
    ({"row0": {"impressions": -1}}, "impressions"),
    ({"row3": {"currency": "USD"}}, "currency"),
    ({"row3": {"currency": "XXQ"}}, "currency"),
    ({"row2": {"country": "jpn"}}, "country"),
    ({"row0": {"clicks": 5000}}, "impressions>=clicks"),
])
def test_row_rules_fail_with_the_row_named(changes, needle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as info:
        check(parsed(rows(4, **changes)))
    error = info.value
    assert needle in str(error)
    assert error.ssp == "adpulse" and error.revenue_date == DAY and error.file == FILE
    assert error.row is not None


def test_rows_for_another_date_fail() -> None:
    import datetime as dt

    with pytest.raises(ValidationFailed, match="revenue_date"):
        check(parsed(rows(3, row1={"revenue_date": dt.date(2026, 11, 4)})))


def test_rows_must_add_up_to_the_reports_own_totals() -> None:
    data = rows(3)
    stated = {"rows": 3, "impressions": sum(r["impressions"] for r in data),
              "clicks": sum(r["clicks"] for r in data),
              "revenue": sum((r["revenue"] for r in data), Decimal(0)) + Decimal("0.000001")}
    with pytest.raises(ValidationFailed, match="total revenue"):
        check(parsed(data, stated))


def test_a_silent_row_cap_shows_as_a_row_count_mismatch() -> None:
    data = rows(3)
    stated = {"rows": 5, "impressions": 0, "clicks": 0, "revenue": Decimal(0)}
    with pytest.raises(ValidationFailed, match="total rows"):
        check(parsed(data, stated))


def test_an_empty_report_fails() -> None:
    with pytest.raises(ValidationFailed, match="no rows"):
        check(parsed([], {"rows": 0, "impressions": 0, "clicks": 0, "revenue": 0}))


def test_nulls_fail_naming_the_column_and_rows_across_batches() -> None:
    """Not-null is read from Arrow's null counts, outside GX: the same message, rows
    numbered across the report's batches, every null column named."""
    from ssp_revenue.ingest.connectors.base import ReportBatches
    from ssp_revenue.ingest.validate import validate_batches

    from .helpers import table

    data = rows(6, row4={"media": None}, row5={"media": None, "country": None})
    whole = table(data)
    batches = whole.slice(0, 3).to_batches() + whole.slice(3).to_batches()
    with pytest.raises(ValidationFailed) as info:
        validate_batches(ReportBatches(iter(batches), None), config=CONFIG, revenue_date=DAY, file=FILE,
                         again=lambda: ReportBatches(iter(batches), None))
    error = info.value
    assert "expect_column_values_to_not_be_null on media: 2 row(s), rows [5, 6]" in str(error)
    assert "expect_column_values_to_not_be_null on country: 1 row(s), rows [6]" in str(error)
    assert error.row == 5 and error.file == FILE


def test_each_batch_is_checked_against_its_own_ssp_date_currency_and_zone_policy() -> None:
    """One suite serves every SSP and date (built once per process); the four values a batch
    must hold are checked per batch, with the message GX gave for them."""
    import dataclasses
    import datetime as dt

    from ssp_revenue.ingest import validate as module

    check(parsed(rows(3)))
    later = DAY + dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as info:  # the same rows as another date's
        validate(parsed(rows(3)), config=CONFIG, revenue_date=later, file=FILE)
    assert info.value.failures == [
        "expect_column_values_to_be_in_set on revenue_date: 3 row(s), rows [1, 2, 3], "
        "values ['2026-11-05', '2026-11-05', '2026-11-05']"]
    validate(parsed(rows(3, **{f"row{i}": {"revenue_date": later} for i in range(3)})),
             config=CONFIG, revenue_date=later, file=FILE)
    with pytest.raises(ValidationFailed) as info:
        validate(parsed(rows(4)), config=dataclasses.replace(CONFIG, name="xchange"), revenue_date=DAY,
                 file=FILE)
    assert info.value.failures == [
        "expect_column_values_to_be_in_set on ssp: 4 row(s), rows [1, 2, 3, 4], "
        "values ['adpulse', 'adpulse', 'adpulse', 'adpulse']"]
    assert info.value.row == 1
    with pytest.raises(ValidationFailed) as info:
        check(parsed(rows(4, row1={"tz_policy": "ssp_date"}, row3={"tz_policy": "ssp_date"})))
    assert info.value.failures == [
        "expect_column_values_to_be_in_set on tz_policy: 2 row(s), rows [2, 4], "
        "values ['ssp_date', 'ssp_date']"]
    assert info.value.row == 2
    assert module.expectation_suite() is module.expectation_suite()


def test_the_preload_sample_takes_the_passing_path() -> None:
    """preload warms GX with a batch that passes: the path every good batch takes."""
    from ssp_revenue.ingest import validate as module

    assert module.preload() is True
