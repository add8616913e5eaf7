"""Japanese-SSP CSV exports: token header, Shift_JIS, JST dates, whole yen with thousands
separators, a totals row (合計) at the end, amounts optionally tax-inclusive.

Consumption tax (when the SSP's ``options.tax_inclusive`` is true): each row's
amount excluding tax = amount x 100 / 110, rounded half-to-even to 6 decimal
places. The totals row is checked against the rows *before* the tax is
stripped, i.e. on the figures exactly as the SSP stated them.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa

from ssp_revenue.core import schema
from ssp_revenue.core.errors import DataNotReady, MalformedReport, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors.base import (
    FetchedReport,
    ParsedReport,
    ReportBody,
    ReportConnector,
    UnexpectedStatus,
)

COLUMNS = {
    "日付": "date", "サイト": "media", "広告枠": "ad_unit", "国": "country",
    "デバイス": "device", "表示回数": "impressions", "クリック数": "clicks", "売上(税込)": "revenue",
}
TOTAL_LABEL = "合計"
TAX_RATE = decimal.Decimal("0.10")
_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*$|^-?\d+$")
_QUANTUM = decimal.Decimal(1).scaleb(-schema.MONEY_SCALE)


def strip_consumption_tax(gross: decimal.Decimal) -> decimal.Decimal:
    return (gross * 100 / (100 + TAX_RATE * 100)).quantize(_QUANTUM, rounding=decimal.ROUND_HALF_EVEN)


def _integer(text: str, name: str, row: int) -> int:
    cell = text.strip()
    if not _NUMBER.match(cell):
        raise MalformedReport(f"column {name!r}: {text!r} is not a whole number", row=row)
    return int(cell.replace(",", ""))


class JpCsvConnector(ReportConnector):
    style: ClassVar[str] = "jp_csv"
    expected_columns: ClassVar[tuple[str, ...]] = tuple(COLUMNS)
    extension: ClassVar[str] = "csv"

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        try:
            response = self.request(
                "GET", f"{self.config.name}/api/v1/report.csv", revenue_date=revenue_date,
                params={"date": revenue_date.isoformat()},
                headers={"X-Auth-Token": self.credentials.secret},
            )
        except UnexpectedStatus as exc:
            if exc.status == 404:
                raise DataNotReady("export not ready yet", ssp=self.config.name,
                                   revenue_date=revenue_date) from None
            raise
        facts = {"style": self.style, "content_type": response.headers.get("Content-Type", "")}
        return FetchedReport(self.config.name, revenue_date, ReportBody.of(response.content), self.extension,
                             facts)

    @classmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        try:
            text = body.decode("cp932")
        except UnicodeDecodeError as exc:
            line = body[: exc.start].count(b"\n")
            raise MalformedReport(f"not Shift_JIS text ({exc.reason})", row=line) from None
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            raise MalformedReport("empty export")
        header = [cell.strip() for cell in rows[0]]
        normalise.check_columns(header, tuple(COLUMNS))
        index = {COLUMNS[name]: i for i, name in enumerate(header)}
        if len(rows) < 2 or rows[-1][:1] != [TOTAL_LABEL]:
            raise MalformedReport("no totals row (合計) at the end: the export is cut short")
        data, total_row = rows[1:-1], rows[-1]
        tax_inclusive = bool(config.options.get("tax_inclusive", False))
        columns: dict[str, list[Any]] = {k: [] for k in
                                         ("revenue_date", "media", "ad_unit", "country", "device",
                                          "impressions", "clicks", "revenue")}
        gross_total = 0
        for number, row in enumerate(data, start=1):
            if len(row) != len(header):
                raise MalformedReport(f"{len(row)} cells, the header has {len(header)}", row=number)
            try:
                day = dt.datetime.strptime(row[index["date"]].strip(), "%Y/%m/%d").date()
            except ValueError:
                raise MalformedReport(f"date {row[index['date']]!r} is not YYYY/MM/DD", row=number) from None
            yen = _integer(row[index["revenue"]], "売上(税込)", number)
            gross_total += yen
            amount = decimal.Decimal(yen)
            columns["revenue_date"].append(day)
            for name in ("media", "ad_unit", "country", "device"):
                columns[name].append(row[index[name]].strip())
            columns["impressions"].append(_integer(row[index["impressions"]], "表示回数", number))
            columns["clicks"].append(_integer(row[index["clicks"]], "クリック数", number))
            columns["revenue"].append(strip_consumption_tax(amount) if tax_inclusive else amount)
        stated_revenue = _integer(total_row[index["revenue"]], TOTAL_LABEL, len(rows) - 1)
        if stated_revenue != gross_total:
            raise ValidationFailed(
                f"totals row states {stated_revenue:,} yen, the rows add up to {gross_total:,}",
                failures=["total revenue (tax included) mismatch"], row=len(rows) - 1,
            )
        n = len(data)
        table = pa.table({
            "revenue_date": pa.array(columns["revenue_date"], pa.date32()),
            "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            **{k: pa.array(columns[k], pa.string()) for k in ("media", "ad_unit", "country", "device")},
            "impressions": pa.array(columns["impressions"], pa.int64()),
            "clicks": pa.array(columns["clicks"], pa.int64()),
            "revenue": pa.array(columns["revenue"], schema.MONEY),
            "currency": pa.repeat(pa.scalar("JPY", pa.string()), n),
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        })
        stated = {
            "rows": n,
            "impressions": _integer(total_row[index["impressions"]], TOTAL_LABEL, len(rows) - 1),
            "clicks": _integer(total_row[index["clicks"]], TOTAL_LABEL, len(rows) - 1),
        }
        return ParsedReport(normalise.conform(table), stated)
