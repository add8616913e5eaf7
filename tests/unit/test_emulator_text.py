"""The emulator's column rendering is exactly what Python's own formatting gives."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import random

import pyarrow as pa

from ssp_emulator import figures, text
from ssp_emulator.declarative import MONEY_SOURCES, _json_rows
from ssp_emulator.http import decimal_text
from ssp_revenue.core.styles import Column

EDGES = [0, 1, -1, 999, 1000, 1005, -1005, 999_999, 1_000_000, 1_234_567, 10**12 + 7, -(2**62), 2**62]


def test_thousands_and_decimals_match_python() -> None:
    rng = random.Random(7)
    values = EDGES + [rng.randint(-10**13, 10**13) for _ in range(5000)] + EDGES  # repeats too
    column = pa.chunked_array([pa.array(values[:100], pa.int64()), pa.array(values[100:], pa.int64())])
    assert text.thousands(column).to_pylist() == [f"{v:,}" for v in values]
    assert text.decimals(column).to_pylist() == [decimal_text(v) for v in values]


def test_csv_lines_quote_as_the_csv_module_does() -> None:
    cells = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", "", "1,234"]
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    for cell in cells:
        writer.writerow([cell, "x", cell])
    column = pa.array(cells)
    assert text.csv_lines([column, pa.array(["x"] * len(cells)), column], "\r\n") == expected.getvalue()
    assert text.csv_lines([pa.array([], pa.string())], "\r\n") == ""


def test_with_cell_replaces_one_cell_only() -> None:
    column = pa.array(["1", "2", "3"])
    assert text.with_cell(column, 1, "12x45").to_pylist() == ["1", "12x45", "3"]
    assert text.with_cell(column, None, "12x45").to_pylist() == ["1", "2", "3"]
    assert text.with_cell(column, 3, "12x45").to_pylist() == ["1", "2", "3"]


def test_stage_cache_serves_the_same_figures_until_a_restatement() -> None:
    profile = dataclasses.replace(figures.DEFAULT_PROFILES["adpulse"], rows=50)
    day = dt.date(2026, 3, 8)
    end = profile.date_end(day)
    before = figures.figures(profile, day, 1, end + dt.timedelta(hours=4))
    again = figures.figures(profile, day, 1, end + dt.timedelta(hours=5))
    restated = figures.figures(profile, day, 1, end + dt.timedelta(hours=7))  # the 6 h restatement
    assert again is before  # one table between restatements
    assert not restated.equals(before)
    assert restated.equals(figures._figures(profile, day, 1, 1))  # one restatement applied


def test_stage_cache_holds_rows_within_its_budget() -> None:
    cache = figures.StageCache(max_rows=100)
    for key in range(5):
        cache.get((key,), lambda: pa.table({"x": list(range(40))}))
    assert sum(t.num_rows for t in cache._tables.values()) <= 100
    assert list(cache._tables) == [(3,), (4,)]


def _json_cell(value: object, column: Column | None) -> object:
    """The page cell as the emulator rendered it row by row before (the reference)."""
    if column is None:
        return decimal_text(value) if isinstance(value, int) else value  # type: ignore[arg-type]
    if column.kind == "instant":
        return value.astimezone(dt.UTC).strftime(column.format)  # type: ignore[attr-defined]
    if column.kind == "date":
        return dt.date.fromisoformat(str(value)).strftime(column.format)
    if column.kind == "money":
        if column.unit == "micros":
            return int(value)  # type: ignore[call-overload]
        return decimal_text(value) if column.unit == "decimal" else int(value) // 1_000_000  # type: ignore[arg-type,call-overload]
    return value


def test_json_pages_render_each_cell_as_python_does() -> None:
    profile = figures.DEFAULT_PROFILES["xchange"]
    start = dt.datetime(2026, 6, 1, 15, tzinfo=dt.UTC)
    hourly = figures.hourly_between(profile, start, start + dt.timedelta(days=1), 3,
                                    start + dt.timedelta(days=5))
    # "revenue": a money column the description does not name (the renamed-column fault)
    whole = hourly.append_column("revenue", pa.array([1_000_000 * i for i in range(hourly.num_rows)], pa.int64()))
    by_source = {"hour_start": Column("hour", "hour", format="%Y-%m-%dT%H:%M:%SZ"),
                 "date": Column("day", "revenue_date", format="%Y/%m/%d"),
                 "site": Column("publisher_site", "media"), "impressions": Column("impressions", "impressions"),
                 "currency": Column("currency", "currency")}
    for unit in ("decimal", "micros", "whole"):
        money = Column("amount", "revenue", unit=unit)
        mapping = {**by_source, "revenue_micros": money}
        page = whole.slice(40, 300)
        expected = []
        for number, row in enumerate(page.to_pylist(), start=41):
            out = {}
            for name, value in row.items():
                column = mapping.get(name)
                if column is None and name not in MONEY_SOURCES:
                    continue
                out[column.name if column is not None else name] = _json_cell(value, column)
            if number == 77:
                out[money.name] = "12x45"
            expected.append(out)
        assert _json_rows(page, mapping, 41, 77, money) == expected
        assert _json_rows(page, mapping, 41, 12, money) == [
            {**row, "amount": _json_cell(v, money)} if row["amount"] == "12x45" else row
            for row, v in zip(expected, page["revenue_micros"].to_pylist(), strict=True)]
