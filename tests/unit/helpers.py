"""Builders for small canonical batches and emulator-style reports."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ssp_revenue.core import schema
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest.connectors.base import ParsedReport

DAY = dt.date(2026, 11, 5)
CONFIG = SspConfig(name="adpulse", style="async_job", connection_id="ssp_adpulse",
                   timezone="Asia/Tokyo", currency="JPY")


def rows(n: int = 4, **overrides: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        row = {
            "revenue_date": DAY, "ssp": "adpulse", "media": "news", "ad_unit": f"u{i}",
            "country": "JP", "device": "mobile", "impressions": 1000 + i, "clicks": 10 + i,
            "revenue": Decimal("123.456789") + i, "currency": "JPY", "tz_policy": "business_zone",
        }
        out.append(row)
    for index, changes in overrides.items():
        out[int(index.removeprefix("row"))].update(changes)
    return out


def table(data: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(data, schema=schema.NORMALISED)


def parsed(data: list[dict[str, Any]], stated: dict[str, Any] | None = None) -> ParsedReport:
    t = table(data)
    if stated is None:
        stated = {
            "rows": len(data),
            "impressions": sum(r["impressions"] for r in data),
            "clicks": sum(r["clicks"] for r in data),
            "revenue": sum((r["revenue"] for r in data), Decimal(0)),
        }
    return ParsedReport(t, stated)


def report_body(columns: dict[str, list[Any]]) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(pa.table(columns), sink)
    return gzip.compress(sink.getvalue(), mtime=0)
