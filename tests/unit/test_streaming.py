"""A day read, validated and hashed one record batch at a time gives what one whole
batch gives: the same hash, totals, failures and row numbers."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssp_revenue.core.errors import MalformedReport, ValidationFailed
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors import AsyncJobConnector
from ssp_revenue.ingest.connectors.base import ReportBatches
from ssp_revenue.ingest.content import ContentHasher, content_hash, text_hashes
from ssp_revenue.ingest.validate import validate, validate_batches

from .helpers import CONFIG, DAY, parsed, report_body, rows, table

FILE = "raw/ssp=adpulse/revenue_date=2026-11-05/x.csv.gz"


def in_batches(data: list[dict[str, Any]], sizes: list[int]) -> list[pa.RecordBatch]:
    out, start = [], 0
    for size in sizes:
        if start >= len(data):
            break
        out.extend(table(data[start:start + size]).to_batches())
        start += size
    if start < len(data):
        out.extend(table(data[start:]).to_batches())
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_the_hash_is_the_same_in_any_batching_and_row_order(seed: int, sizes: list[int]) -> None:
    data = rows(60, row7={"media": "games"}, row9={"device": "ctv"})
    shuffled = data[:]
    random.Random(seed).shuffle(shuffled)
    hasher = ContentHasher()
    for batch in in_batches(shuffled, sizes):
        hasher.update(batch)
    assert hasher.rows == 60
    assert hasher.hexdigest() == content_hash(table(data))


def test_text_words_tell_apart_padding_and_length() -> None:
    words = text_hashes(pa.array(["a", "a\x00", "", "\x00", "a" * 8, "a" * 9, "é"]))
    assert len(set(words.tolist())) == 7
    assert text_hashes(pa.array(["x", "a"]))[1] == words[0]


def test_one_changed_figure_in_one_batch_changes_the_hash() -> None:
    data = rows(30)
    moved = rows(30, row17={"clicks": data[17]["clicks"] + 1})
    hasher = ContentHasher()
    for batch in in_batches(moved, [7, 7, 7]):
        hasher.update(batch)
    assert hasher.hexdigest() != content_hash(table(data))


def test_validation_in_batches_agrees_with_one_batch() -> None:
    data = rows(50)
    whole = validate(parsed(data), config=CONFIG, revenue_date=DAY, file=FILE)
    stated = parsed(data).stated_totals
    batches = in_batches(data[::-1], [9, 9, 9, 9])
    report = validate_batches(ReportBatches(iter(batches), stated), config=CONFIG, revenue_date=DAY,
                              file=FILE, again=lambda: ReportBatches(iter(batches), stated))
    assert (report.totals, report.digest) == (whole.totals, whole.digest)


def test_a_duplicate_grain_across_batches_is_found_with_both_rows() -> None:
    data = rows(40, row33={"ad_unit": "u3"})  # row 34 repeats row 4's grain, three batches later
    batches = in_batches(data, [10, 10, 10, 10])
    with pytest.raises(ValidationFailed, match=r"unique.*across batches: 2 row\(s\), rows \[4, 34\]") as err:
        validate_batches(ReportBatches(iter(batches), None), config=CONFIG, revenue_date=DAY, file=FILE,
                         again=lambda: ReportBatches(iter(batches), None))
    assert err.value.row == 4


def test_a_failing_row_in_a_later_batch_is_numbered_in_the_report() -> None:
    data = rows(30, row25={"impressions": -1})
    batches = in_batches(data, [10, 10, 10])
    with pytest.raises(ValidationFailed, match=r"impressions.*rows \[26\]") as err:
        validate_batches(ReportBatches(iter(batches), None), config=CONFIG, revenue_date=DAY, file=FILE,
                         again=lambda: ReportBatches(iter(batches), None))
    assert err.value.row == 26


def _columns(n: int) -> dict[str, list[Any]]:
    return {
        "date": [DAY.isoformat()] * n, "site": ["news"] * n, "ad_unit_code": [f"u{i}" for i in range(n)],
        "country_code": ["JP"] * n, "device_category": ["mobile"] * n,
        "impressions": [str(100 + i) for i in range(n)], "clicks": ["1"] * n,
        "revenue_micros": [str(1_000_000 + i) for i in range(n)], "currency": ["JPY"] * n,
    }


def test_a_gzip_csv_is_read_in_many_batches_as_parse_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    body = report_body(_columns(5000))
    whole = AsyncJobConnector.parse(CONFIG, body, {}, DAY).table
    monkeypatch.setattr(normalise, "BATCH_BYTES", 16 * 1024)
    batches = list(AsyncJobConnector.read_batches(CONFIG, lambda: io.BytesIO(body), {}, DAY).batches)
    assert len(batches) > 5
    assert pa.Table.from_batches(batches).equals(whole)
    assert sum(b.num_rows for b in batches) == 5000
    assert Decimal(str(whole["revenue"][4999].as_py())) == Decimal("1.004999")


def test_a_bad_cell_in_a_later_batch_names_its_row(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = _columns(5000)
    columns["clicks"][4321] = "x"
    body = report_body(columns)
    monkeypatch.setattr(normalise, "BATCH_BYTES", 16 * 1024)
    with pytest.raises(MalformedReport, match="'x' is not an integer") as err:
        list(AsyncJobConnector.read_batches(CONFIG, lambda: io.BytesIO(body), {}, DAY).batches)
    assert err.value.row == 4322
