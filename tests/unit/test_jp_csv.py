"""The Japanese CSV export parses exactly: Shift_JIS, thousands separators, totals row, tax."""

import datetime as dt
from decimal import Decimal

import pytest

from ssp_revenue.core.errors import MalformedReport, SchemaDrift, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest.connectors.jp_csv import JpCsvConnector, strip_consumption_tax

DAY = dt.date(2026, 11, 5)
GROSS = SspConfig(name="nihon", style="jp_csv", connection_id="c", timezone="Asia/Tokyo",
                  currency="JPY", options={"tax_inclusive": True})
NET = SspConfig(name="nihon", style="jp_csv", connection_id="c", timezone="Asia/Tokyo", currency="JPY")
HEADER = "日付,サイト,広告枠,国,デバイス,表示回数,クリック数,売上(税込)\r\n"


def export(rows: list[str], total: str) -> bytes:
    return (HEADER + "".join(r + "\r\n" for r in rows) + total + "\r\n").encode("cp932")


ROWS = [
    '2026/11/05,ニュース,news_unit00000,JP,mobile,"38,682",598,"27,594"',
    '2026/11/05,スポーツ,sports_unit00001,US,desktop,"1,204,500","1,001","1,100,000"',
]
TOTAL = '合計,,,,,"1,243,182","1,599","1,127,594"'


def test_parses_exactly_with_separators_and_japanese_text() -> None:
    parsed = JpCsvConnector.parse(NET, export(ROWS, TOTAL), {}, DAY)
    table = parsed.table.to_pylist()
    assert [r["media"] for r in table] == ["ニュース", "スポーツ"]
    assert [r["impressions"] for r in table] == [38_682, 1_204_500]
    assert [r["revenue"] for r in table] == [Decimal("27594"), Decimal("1100000")]
    assert parsed.stated_totals == {"rows": 2, "impressions": 1_243_182, "clicks": 1_599}


def test_consumption_tax_is_stripped_per_row_half_even() -> None:
    parsed = JpCsvConnector.parse(GROSS, export(ROWS, TOTAL), {}, DAY)
    assert [r["revenue"] for r in parsed.table.to_pylist()] == [
        Decimal("25085.454545"), Decimal("1000000.000000")]
    assert strip_consumption_tax(Decimal("11")) == Decimal("10.000000")
    assert strip_consumption_tax(Decimal("1")) == Decimal("0.909091")


def test_a_totals_mismatch_fails_validation() -> None:
    with pytest.raises(ValidationFailed, match="totals row states 1,127,595"):
        JpCsvConnector.parse(NET, export(ROWS, TOTAL[:-2] + '5"'), {}, DAY)


def test_missing_totals_row_means_cut_short() -> None:
    with pytest.raises(MalformedReport, match="totals row"):
        JpCsvConnector.parse(NET, export(ROWS, ROWS[0]), {}, DAY)


def test_utf8_with_bom_is_not_taken_for_shift_jis() -> None:
    body = "\ufeff".encode() + export(ROWS, TOTAL).decode("cp932").encode("utf-8")
    with pytest.raises((SchemaDrift, MalformedReport)):
        JpCsvConnector.parse(NET, body, {}, DAY)


def test_a_bad_number_names_its_row() -> None:
    rows = [ROWS[0], ROWS[1].replace('"1,100,000"', '"1,1OO,000"')]
    with pytest.raises(MalformedReport) as info:
        JpCsvConnector.parse(NET, export(rows, TOTAL), {}, DAY)
    assert info.value.row == 2
