"""A described report (CSV or JSON rows) read in whole columns gives exactly what the
cell-by-cell reader gives, or leaves the report to it: same rows, same Decimals, same errors
naming the same row."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import random
import re
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssp_revenue.core.errors import PipelineError
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.styles import ReportStyle, load_style
from ssp_revenue.ingest.connectors import declarative
from ssp_revenue.ingest.connectors.declarative import _CsvColumns, _CsvRows, connector_for, strip_tax

DAY = dt.date(2026, 11, 5)
GROUPS = {"plain": ("", "."), "thousands": (",", "."), "decimal_comma": ("", ","),
          "thousands_decimal_comma": (".", ",")}


def _style(number_format: str, unit: str, delimiter: str) -> ReportStyle:
    base = load_style("jp_csv")
    assert base is not None
    columns = tuple(
        dataclasses.replace(c, number_format=number_format, unit=unit) if c.to == "revenue"
        else dataclasses.replace(c, number_format=number_format) if c.to in ("impressions", "clicks")
        else c
        for c in base.columns)
    return dataclasses.replace(base, name=f"t_{number_format}_{unit}_{ord(delimiter)}", columns=columns,
                               delimiter=delimiter, encoding="utf-8")


def _number(value: int, number_format: str, fraction: str = "") -> str:
    group, point = GROUPS[number_format]
    whole = f"{abs(value):,}".replace(",", group) if group else str(abs(value))
    return ("-" if value < 0 else "") + whole + (point + fraction if fraction else "")


def _cell(text: str, delimiter: str) -> str:
    return f'"{text}"' if delimiter in text or '"' in text else text


def _report(style: ReportStyle, rng: random.Random, rows: int, largest: int = 10**9) -> tuple[str, int]:
    """A well-formed report of ``rows`` rows, its totals row stating the exact sums."""
    fmt, unit, d = style.columns[-1].number_format, style.columns[-1].unit, style.delimiter
    lines = [d.join(c.name for c in style.columns)]
    impressions = clicks = 0
    money = Decimal(0)
    for _ in range(rows):
        imp = rng.choice([0, 7, 999, 1000, 123_456_789, rng.randint(0, 10**9)])
        clk = rng.randint(0, imp)
        if unit == "decimal":
            whole, frac = rng.randint(-10**6, largest), "".join(rng.choice("0123456789")
                                                               for _ in range(rng.randint(0, 6)))
            amount = Decimal(f"{whole}.{frac or '0'}")
            text = _number(whole, fmt, frac) if whole >= 0 else "-" + _number(-whole, fmt, frac)
        else:
            value = rng.choice([0, 1, 11, largest, rng.randint(-10**4, largest)])
            amount = Decimal(value) * (Decimal("0.000001") if unit == "micros" else 1)
            text = _number(value, fmt)
        impressions, clicks, money = impressions + imp, clicks + clk, money + amount
        cells = ["2026/11/05", rng.choice(["ニュース", " sport ", "a\u3000b", "x"]), f"u{rng.randint(0, 40)}",
                 rng.choice(["JP", "US"]), "mobile", _number(imp, fmt), _number(clk, fmt), text]
        lines.append(d.join(_cell(c, d) for c in cells))
    exact = money.normalize() if unit == "decimal" else money
    sign, digits = ("-", -exact) if exact < 0 else ("", exact)
    whole_part, _, frac_part = format(digits, "f").partition(".")
    total = sign + _number(int(whole_part), fmt, frac_part.rstrip("0") if unit == "decimal" else "")
    lines.append(d.join(_cell(c, d) for c in ["合計", "", "", "", "", _number(impressions, fmt),
                                               _number(clicks, fmt), total]))
    return "\r\n".join(lines) + "\r\n", rows


def _same(a: Any, b: Any) -> None:
    assert a.rows == b.rows and a.total_row == b.total_row and a.stated_money == b.stated_money
    assert set(a.columns) == set(b.columns)
    for name in a.columns:
        assert a.columns[name].to_pylist() == b.columns[name].to_pylist(), name


@pytest.mark.parametrize("number_format", sorted(GROUPS))
@pytest.mark.parametrize("unit", ["whole", "decimal", "micros"])
@pytest.mark.parametrize("taxed", [False, True])
def test_whole_columns_read_as_the_cells_do(number_format: str, unit: str, taxed: bool) -> None:
    rng = random.Random(hash((number_format, unit, taxed)) & 0xFFFF)
    for delimiter in (",", ";", "\t"):
        style = _style(number_format, unit, delimiter)
        config = SspConfig(name="t", style=style.name, connection_id="c", timezone="Asia/Tokyo",
                           currency="JPY", options={"tax_inclusive": taxed})
        text, _ = _report(style, rng, 300)
        header = text.split("\r\n", 1)[0].split(delimiter)
        fast = _CsvColumns.read(style, config, text, header)
        assert fast is not None, "a plainly well-formed report is read in whole columns"
        _same(fast, _CsvRows.read(style, config, text, header))


def test_tax_is_stripped_exactly_at_halves_and_beyond_64_bits() -> None:
    small = [0, 1, -1, 5, 55, 105, 1_100_000, 10**15, -(10**15), *range(-40, 40), *range(-300, 300, 7)]
    for rate in (Decimal("0.10"), Decimal("0.08"), Decimal("0.085"), Decimal("0.2"), Decimal("1")):
        # 0.2 and 1 put some quotients on a half (x 100/120, x 100/200): half-to-even decides them
        for micros in (small, [*small, 10**17, -(10**17)]):  # the second beyond int64 arithmetic
            got = declarative._without_tax(np.array(micros, dtype=np.int64), rate)
            want = [int(strip_tax(Decimal(m).scaleb(-6), rate).scaleb(6)) for m in micros]
            assert got.tolist() == want


# Cells the whole-column reader must leave to the cell-by-cell one (or read identically).
ODD_CELLS = ["1.0", "1234,567", "12,34", "1.2345,6", "1e3", "+5", " 12 ", "\u3000 12", "\uff11\uff12", "12.",
             ".5", "1,2,3", "1.000.000", "0012", "-0", "", "  ", "99999999999999999999", "1,234.5678901", "1,5", "12x45", '"1,0"0', "9" * 13]


@pytest.mark.parametrize("number_format", sorted(GROUPS))
@pytest.mark.parametrize("unit", ["whole", "decimal", "micros"])
def test_odd_cells_give_the_cell_readers_answer(number_format: str, unit: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    style = _style(number_format, unit, ",")
    connector = connector_for(style)
    config = SspConfig(name="t", style=style.name, connection_id="c", timezone="Asia/Tokyo", currency="JPY",
                       options={"tax_inclusive": True})
    rng = random.Random(5)
    clean, _ = _report(style, rng, 4)
    lines = clean.split("\r\n")

    def outcome(body: bytes) -> Any:
        try:
            parsed = connector.parse(config, body, {}, DAY)
        except PipelineError as exc:
            return (type(exc).__name__, str(exc), exc.row)
        return parsed.table.to_pylist(), parsed.stated_totals

    for odd in ODD_CELLS:
        for position in (5, 7):  # an integer column, the money column
            for line in (2, 5):  # a data row, the totals row
                cells = next(csv.reader([lines[line]]))
                cells[position] = odd
                body_lines = [*lines[:line], ",".join(_cell(c, ",") for c in cells), *lines[line + 1:]]
                body = "\r\n".join(body_lines).encode()
                with monkeypatch.context() as m:
                    m.setattr(_CsvColumns, "read", classmethod(lambda cls, *a: None))
                    expected = outcome(body)
                assert outcome(body) == expected, (odd, position, line)
    for broken in (clean.replace("\r\n", "\r\n\r\n", 1), clean.replace('"', "", 1), clean + "x,y\r\n",
                   clean.replace("mobile", 'mob"ile', 1), clean.replace(",", ",\n", 1)):
        with monkeypatch.context() as m:
            m.setattr(_CsvColumns, "read", classmethod(lambda cls, *a: None))
            expected = outcome(broken.encode())
        assert outcome(broken.encode()) == expected


def test_the_shipped_style_reads_a_large_export_in_whole_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from ssp_revenue.ingest.connectors.jp_csv import JpCsvConnector

    style = JpCsvConnector.description
    text, rows = _report(dataclasses.replace(style, encoding="cp932"), random.Random(3), 20_000, 10**7)
    text = text.replace("\u3000", " ")  # cp932 has the ideographic space, but keep the test plain
    config = SspConfig(name="nihon", style="jp_csv", connection_id="c", timezone="Asia/Tokyo", currency="JPY",
                       options={"tax_inclusive": True})
    monkeypatch.setattr(_CsvRows, "read", staticmethod(lambda *a: pytest.fail("read cell by cell")))
    parsed = JpCsvConnector.parse(config, text.encode("cp932"), {}, DAY)
    assert parsed.table.num_rows == rows
    assert parsed.stated_totals is not None and parsed.stated_totals["rows"] == rows


def _json_outcome(spec: ReportStyle, rows: list[dict[str, Any]]) -> Any:
    try:
        return declarative._json_table(spec, rows).to_pylist()
    except PipelineError as exc:
        return (type(exc).__name__, str(exc), exc.row)
    except (ValueError, TypeError, ArithmeticError) as exc:  # what the row-by-row typing lets through
        return (type(exc).__name__, str(exc))


def test_json_rows_typed_in_columns_as_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_style("rest_json")
    assert spec is not None
    rng = random.Random(11)
    rows = [{"hour": f"2026-06-01T{h:02d}:00:00Z", "publisher_site": rng.choice(["news", "sport"]),
             "placement": f"u{rng.randint(0, 30)}", "geo": "JP", "platform": "web",
             "impressions": (imp := rng.randint(0, 10**9)), "clicks": rng.randint(0, imp),
             "revenue_usd": f"{rng.randint(-5, 10**6)}.{rng.randint(0, 999_999):06d}", "currency": "USD"}
            for h in range(24) for _ in range(40)]
    odd_values = [None, True, 1.0, 1.5, "12", 2**70, "2026-06-01 00:00", "1e3", "x", 12, ["a"]]
    cases = [rows]
    for field in ("hour", "publisher_site", "impressions", "revenue_usd", "currency"):
        for value in odd_values:
            changed = [dict(r) for r in rows]
            changed[rng.randrange(len(rows))][field] = value
            cases.append(changed)
        missing = [dict(r) for r in rows]
        del missing[17][field]
        cases.append(missing)
    taken = 0
    for case in cases:
        with monkeypatch.context() as m:
            m.setattr(declarative, "_json_columns", lambda spec, rows: None)
            expected = _json_outcome(spec, case)
        taken += declarative._json_columns(spec, case) is not None
        assert _json_outcome(spec, case) == expected
    assert taken >= 1 + 5  # the clean rows, and e.g. a text field that is still text


def test_a_page_head_holds_only_the_named_fields_of_a_plain_json_object() -> None:
    """Fetching decodes a page's cursor and totals alone; anything it cannot read so goes
    to the whole-page decode, as before."""
    page = b'{"data": [{"x": "\\u00e9"}, {"x": 1}], "next_cursor": "c2", "totals": {"rows": 2}}'
    assert declarative._page_head(page, ("next_cursor", "totals")) == {"next_cursor": "c2",
                                                                       "totals": {"rows": 2}}
    assert declarative._page_head(page, ("next_cursor", None)) == {"next_cursor": "c2"}
    assert declarative._page_head(b'{"data": []}', ("next_cursor",)) == {}
    for odd in (b"\xef\xbb\xbf" + page, b"[1, 2]", b'{"data": ["\xff"]}', b'{"data": [1', b"<html>"):
        assert declarative._page_head(odd, ("next_cursor", "totals")) is None


def test_a_json_document_outside_strict_json_is_read_as_the_standard_library_reads_it() -> None:
    assert declarative._json_document(b'{"a": [1, "b"]}') == {"a": [1, "b"]}
    value = declarative._json_document(b'{"a": NaN, "b": 123456789012345678901234567890}')
    assert value["a"] != value["a"] and value["b"] == 123456789012345678901234567890
    with pytest.raises(ValueError):
        declarative._json_document(b'{"a": ')


def _quoted_cells(delimiter: str) -> re.Pattern[str]:
    """The rule as a regular expression (what the reader checked with before): a whole cell in
    quotes, with no quote or line end inside, after the start, a delimiter or a line end and
    before one or the end."""
    d = re.escape(delimiter)
    return re.compile(f'(?:^|(?<=[{d}\\r\\n]))"[^"\\r\\n]*"(?=[{d}\\r\\n]|\\Z)')


@settings(max_examples=600, deadline=None)
@given(text=st.text(alphabet=['"', ",", ";", "\t", "\r", "\n", "a", " ", "ニ", "\u3000"], max_size=40),
       delimiter=st.sampled_from([",", ";", "\t", "ニ"]))
def test_the_quote_check_is_the_rule(text: str, delimiter: str) -> None:
    by_rule = 2 * len(_quoted_cells(delimiter).findall(text)) == text.count('"')
    assert _CsvColumns.quotes_enclose_whole_cells(text, delimiter) == by_rule


def test_the_quote_check_on_an_export_quoted_throughout() -> None:
    row = ",".join(f'"c{i}"' for i in range(9))
    text = "\r\n".join([row] * 1000) + "\r\n"
    assert _CsvColumns.quotes_enclose_whole_cells(text, ",")
    for broken in (text + 'x"', text.replace('"c4"', '"c"4"', 1), text.replace('"c4"', '"c\n4"', 1),
                   text.replace(',"c4"', ' "c4"', 1), text.replace('"c4",', '"c4" ,', 1)):
        assert not _CsvColumns.quotes_enclose_whole_cells(broken, ",")
