"""Connectors for the report styles described in YAML (``core.styles``): one class per description.

Parsing is exact: every number is read from its text by the column's declared
format into an integer or a Decimal (never a float), a bad cell is named by its
column and data row (1-based, after the header), and the totals row is checked
against the rows as the SSP stated them, before any tax is stripped.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import io
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from ssp_revenue.core import calendar, schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import DataNotReady, MalformedReport, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.styles import DIMENSIONS, Column, ReportStyle
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors.base import (
    FetchedReport,
    ParsedReport,
    ReportBody,
    ReportConnector,
    UnexpectedStatus,
)

_QUANTUM = decimal.Decimal(1).scaleb(-schema.MONEY_SCALE)
_MICROS = decimal.Decimal(1).scaleb(-6)
# Digits as each number format writes them: group separators, then an optional fraction.
_FORMATS = {
    "plain": (re.compile(r"^-?\d+(\.\d+)?$"), "", "."),
    "thousands": (re.compile(r"^-?(\d{1,3}(,\d{3})*|\d+)(\.\d+)?$"), ",", "."),
    "decimal_comma": (re.compile(r"^-?\d+(,\d+)?$"), "", ","),
    "thousands_decimal_comma": (re.compile(r"^-?(\d{1,3}(\.\d{3})*|\d+)(,\d+)?$"), ".", ","),
}
MAX_MONEY = decimal.Decimal(10) ** (18 - schema.MONEY_SCALE)
MAX_PAGES = 10_000


def strip_tax(gross: decimal.Decimal, rate: decimal.Decimal) -> decimal.Decimal:
    """The amount excluding tax: gross x 100 / (100 + rate x 100), half-to-even to 6 places."""
    return (gross * 100 / (100 + rate * 100)).quantize(_QUANTUM, rounding=decimal.ROUND_HALF_EVEN)


def read_number(column: Column, text: str, row: int) -> decimal.Decimal:
    """A cell's exact value as written in the column's number format.

    Raises:
        MalformedReport: the text is not such a number, naming the column and row.
    """
    cell = text.strip()
    pattern, group, point = _FORMATS[column.number_format]
    if not pattern.match(cell):
        raise MalformedReport(f"column {column.name!r}: {text!r} is not a {column.number_format} number",
                              row=row)
    digits = cell.replace(group, "") if group else cell
    return decimal.Decimal(digits.replace(",", ".") if point == "," else digits)


def read_integer(column: Column, text: str, row: int) -> int:
    value = read_number(column, text, row)
    if value != value.to_integral_value():
        raise MalformedReport(f"column {column.name!r}: {text!r} is not a whole number", row=row)
    return int(value)


def read_money(column: Column, text: str, row: int) -> decimal.Decimal:
    """Money in the SSP's currency, exact to 6 places, from whole units, a decimal or micros."""
    value = read_number(column, text, row)
    if column.unit in ("whole", "micros") and value != value.to_integral_value():
        raise MalformedReport(f"column {column.name!r}: {text!r} is not a whole number of "
                              f"{'units' if column.unit == 'whole' else 'micros'}", row=row)
    if column.unit == "micros":
        value = value * _MICROS
    if value.as_tuple().exponent < -schema.MONEY_SCALE:  # type: ignore[operator]
        raise MalformedReport(f"column {column.name!r}: {text!r} has more than {schema.MONEY_SCALE} decimals",
                              row=row)
    if abs(value) >= MAX_MONEY:
        raise MalformedReport(f"column {column.name!r}: {text!r} is beyond the money type", row=row)
    return value


class DeclarativeConnector(ReportConnector):
    """A report style read by its description; subclasses only bind the description."""

    description: ClassVar[ReportStyle]
    page_size: int | None = None  # pages: a smaller page than the description asks for

    def statement_headers(self, month: Month) -> dict[str, str]:
        return {header: self.credentials.login if field == "login" else self.credentials.secret
                for header, field in self.description.headers.items()}

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        spec = self.description
        tz = ZoneInfo(self.business_tz)
        start = calendar.date_start(revenue_date, tz).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = calendar.date_start(revenue_date + dt.timedelta(days=1), tz).strftime("%Y-%m-%dT%H:%M:%SZ")
        values = {"ssp": self.config.name, "date": revenue_date.isoformat(), "start": start, "end": end}
        headers = {header: self.credentials.login if field == "login" else self.credentials.secret
                   for header, field in spec.headers.items()}
        params = {k: v.format(**values) for k, v in spec.request.params.items()}
        if self.page_size is not None and spec.request.size_param:
            params[spec.request.size_param] = str(self.page_size)
        if spec.body_format == "csv":
            response = self._ask(revenue_date, values, params, headers)
            facts = {"style": self.style, "content_type": response.headers.get("Content-Type", "")}
            return FetchedReport(self.config.name, revenue_date, ReportBody.of(response.content),
                                 self.extension, facts)
        pages: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            asked = dict(params)
            if cursor and spec.request.cursor_param:
                asked[spec.request.cursor_param] = cursor
            response = self._ask(revenue_date, values, asked, headers)
            try:
                page = response.json()
            except ValueError:
                # Keep what was served: the body lands raw and fails parsing with a clear error.
                pages.append({"unparseable": response.text})
                break
            pages.append(page)
            cursor = page.get(spec.request.next_field) if spec.request.next_field and isinstance(page, dict) \
                else None
            if not cursor:
                break
        envelope = {"start": start, "end": end, "business_tz": self.business_tz, "pages": pages}
        body = gzip.compress(json.dumps(envelope, sort_keys=True).encode(), mtime=0)
        first = pages[0] if pages and isinstance(pages[0], dict) else {}
        facts = {"style": self.style, "pages": len(pages),
                 "totals": first.get(spec.totals_field) if spec.totals_field else None}
        return FetchedReport(self.config.name, revenue_date, ReportBody.of(body), self.extension, facts)

    def _ask(self, revenue_date: dt.date, values: Mapping[str, str], params: dict[str, str],
             headers: dict[str, str]) -> Any:
        spec = self.description
        try:
            return self.request(spec.request.method, spec.request.path.format(**values),
                                revenue_date=revenue_date, headers=headers, params=params)
        except UnexpectedStatus as exc:
            code = spec.request.not_ready_code
            if exc.status == spec.request.not_ready_status and code in (None, exc.code):
                raise DataNotReady("report not ready yet", ssp=self.config.name,
                                   revenue_date=revenue_date) from None
            raise

    @classmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        spec = cls.description
        if spec.body_format == "json":
            return cls._parse_json(config, body)
        try:
            text = body.decode(spec.encoding)
        except UnicodeDecodeError as exc:
            line = body[: exc.start].count(b"\n")
            raise MalformedReport(f"not {spec.encoding} text ({exc.reason})", row=line) from None
        rows = list(csv.reader(io.StringIO(text), delimiter=spec.delimiter))
        if not rows:
            raise MalformedReport("empty report")
        header = [cell.strip() for cell in rows[0]]
        normalise.check_columns(header, spec.expected_columns)
        index = {name: i for i, name in enumerate(header)}
        data, total_row = rows[1:], None
        if spec.totals_label is not None:
            if len(rows) < 2 or rows[-1][:1] != [spec.totals_label]:
                raise MalformedReport(f"no totals row ({spec.totals_label}) at the end: "
                                      "the report is cut short")
            data, total_row = rows[1:-1], rows[-1]
        by_target = {c.to: c for c in spec.columns}
        money = by_target["revenue"]
        tax = money.tax if money.tax is not None and config.options.get(money.tax.when) else None
        columns: dict[str, list[Any]] = {t: [] for t in by_target}
        stated_money = decimal.Decimal(0)
        for number, row in enumerate(data, start=1):
            if len(row) != len(header):
                raise MalformedReport(f"{len(row)} cells, the header has {len(header)}", row=number)
            for target, column in by_target.items():
                cell = row[index[column.name]]
                if column.kind == "date":
                    try:
                        columns[target].append(dt.datetime.strptime(cell.strip(), column.format).date())
                    except ValueError:
                        raise MalformedReport(f"column {column.name!r}: date {cell!r} is not {column.format}",
                                              row=number) from None
                elif column.kind == "integer":
                    columns[target].append(read_integer(column, cell, number))
                elif column.kind == "money":
                    amount = read_money(column, cell, number)
                    stated_money += amount
                    columns[target].append(strip_tax(amount, tax.rate) if tax else amount)
                else:
                    columns[target].append(cell.strip())
        stated: dict[str, Any] | None = None
        if total_row is not None:
            at = len(rows) - 1
            if len(total_row) != len(header):
                raise MalformedReport(f"{len(total_row)} cells, the header has {len(header)}", row=at)
            stated_revenue = read_money(money, total_row[index[money.name]], at)
            if stated_revenue != stated_money:
                taxed = " (tax included)" if money.tax is not None else ""
                raise ValidationFailed(
                    f"totals row states {stated_revenue:,} {config.currency}, the rows add up to "
                    f"{stated_money:,}", failures=[f"total revenue{taxed} mismatch"], row=at)
            stated = {"rows": len(data)}
            for target in ("impressions", "clicks"):
                stated[target] = read_integer(by_target[target], total_row[index[by_target[target].name]], at)
        n = len(data)
        currency = (pa.array(columns["currency"], pa.string()) if "currency" in by_target
                    else pa.repeat(pa.scalar(config.currency, pa.string()), n))
        table = pa.table({
            "revenue_date": pa.array(columns["revenue_date"], pa.date32()),
            "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            **{k: pa.array(columns[k], pa.string()) for k in ("media", "ad_unit", "country", "device")},
            "impressions": pa.array(columns["impressions"], pa.int64()),
            "clicks": pa.array(columns["clicks"], pa.int64()),
            "revenue": pa.array(columns["revenue"], schema.MONEY),
            "currency": currency,
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        })
        return ParsedReport(normalise.conform(table), stated)


    @classmethod
    def _parse_json(cls, config: SspConfig, body: bytes) -> ParsedReport:
        """The landed pages (one raw object: the range, the zone and every page as served)."""
        spec = cls.description
        try:
            envelope = json.loads(normalise.decompress(body))
            pages = envelope["pages"]
            tz = ZoneInfo(envelope["business_tz"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedReport(f"not a landed JSON report ({exc})") from None
        rows: list[dict[str, Any]] = []
        for number, page in enumerate(pages, start=1):
            if not isinstance(page, dict) or spec.rows_field not in page:
                raise MalformedReport(f"page {number} is not a report page (truncated or an error body)")
            rows.extend(page[spec.rows_field])
        if rows:
            normalise.check_columns(list(rows[0]), spec.expected_columns)
        stated = (pages[0] or {}).get(spec.totals_field) if pages and spec.totals_field else None
        names = spec.totals_names
        if stated and int(stated[names["rows"]]) != len(rows):
            raise MalformedReport(f"{len(rows)} rows served, the report states {stated[names['rows']]}")
        table = _json_table(spec, rows)
        if spec.hourly:
            day = pc.cast(pc.local_timestamp(table["hour"].cast(pa.timestamp("us", tz=str(tz)))), pa.date32())
        else:
            day = table["revenue_date"]
        keyed = pa.table({"revenue_date": day, **{k: table[k] for k in (*DIMENSIONS, "currency")},
                          "impressions": table["impressions"], "clicks": table["clicks"],
                          "revenue": table["revenue"]})
        if spec.hourly:  # hours summed into business dates
            grouped = keyed.group_by(["revenue_date", *DIMENSIONS, "currency"]).aggregate(
                [("impressions", "sum"), ("clicks", "sum"), ("revenue", "sum")])
        else:
            grouped = keyed.rename_columns([f"{c}_sum" if c in ("impressions", "clicks", "revenue") else c
                                            for c in keyed.column_names])
        n = grouped.num_rows
        out = pa.table({
            "revenue_date": grouped["revenue_date"],
            "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            **{k: grouped[k] for k in DIMENSIONS},
            "impressions": grouped["impressions_sum"], "clicks": grouped["clicks_sum"],
            "revenue": grouped["revenue_sum"].cast(schema.MONEY),
            "currency": grouped["currency"],
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        })
        totals = None
        if stated:
            totals = {"impressions": int(stated[names["impressions"]]),
                      "clicks": int(stated[names["clicks"]]),
                      "revenue": decimal.Decimal(str(stated[names["revenue"]]))}
        return ParsedReport(normalise.conform(out), totals)


def _json_table(spec: ReportStyle, rows: list[dict[str, Any]]) -> pa.Table:
    """Strict typing of the JSON rows; a bad value names its row (1-based, across pages)."""
    columns: dict[str, list[Any]] = {c.to: [] for c in spec.columns}
    for number, row in enumerate(rows, start=1):
        for column in spec.columns:
            value = row.get(column.name)
            if value is None or isinstance(value, bool):
                raise MalformedReport(f"field {column.name!r} missing or null", row=number)
            columns[column.to].append(value)
    out: dict[str, pa.Array] = {}
    for column in spec.columns:
        values = columns[column.to]
        if column.kind in ("instant", "date"):
            try:
                parsed = pc.strptime(pa.array(values, pa.string()), format=column.format, unit="us")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                _first_bad(values, lambda v, f=column.format: dt.datetime.strptime(v, f), column.name)
                raise
            if column.kind == "instant":
                out[column.to] = pc.assume_timezone(parsed, "UTC")
            else:
                out[column.to] = pc.cast(parsed, pa.date32())
        elif column.kind == "integer":
            if not all(isinstance(v, int) for v in values):
                _first_bad(values, lambda v: v if isinstance(v, int) else int("x"), column.name)
            out[column.to] = pa.array(values, pa.int64())
        elif column.kind == "money":
            texts = [str(v) for v in values]
            try:
                out[column.to] = pc.cast(pa.array(texts, pa.string()), schema.MONEY)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                _first_bad(texts, lambda v, c=column: read_money(c, v, 0), column.name)
                raise
        else:
            out[column.to] = pa.array([str(v) for v in values], pa.string())
    if "currency" not in out:
        raise MalformedReport("a JSON report names the currency of its rows (a 'currency' column)")
    return pa.table(out)


def _first_bad(values: list[Any], check: Any, name: str) -> None:
    for number, value in enumerate(values, start=1):
        try:
            check(value)
        except (ValueError, TypeError, decimal.InvalidOperation, MalformedReport):
            raise MalformedReport(f"field {name!r}: {value!r} is not valid", row=number) from None


_CLASSES: dict[str, type[DeclarativeConnector]] = {}


def connector_for(spec: ReportStyle) -> type[DeclarativeConnector]:
    """The connector class of a description: one per style, so ``style`` and its columns are class facts."""
    if spec.name not in _CLASSES or _CLASSES[spec.name].description is not spec:
        _CLASSES[spec.name] = type(
            f"Described_{spec.name}", (DeclarativeConnector,),
            {"style": spec.name, "expected_columns": spec.expected_columns, "extension": spec.extension,
             "description": spec, "__doc__": spec.description or f"The {spec.name} style, as described."},
        )
    return _CLASSES[spec.name]
