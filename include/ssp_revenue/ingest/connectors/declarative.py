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
import io
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa

from ssp_revenue.core import schema
from ssp_revenue.core.errors import DataNotReady, MalformedReport, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.styles import Column, ReportStyle
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

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        spec = self.description
        values = {"ssp": self.config.name, "date": revenue_date.isoformat()}
        headers = {header: self.credentials.login if field == "login" else self.credentials.secret
                   for header, field in spec.headers.items()}
        try:
            response = self.request(spec.request.method, spec.request.path.format(**values),
                                    revenue_date=revenue_date, headers=headers,
                                    params={k: v.format(**values) for k, v in spec.request.params.items()})
        except UnexpectedStatus as exc:
            if exc.status == spec.request.not_ready_status:
                raise DataNotReady("report not ready yet", ssp=self.config.name,
                                   revenue_date=revenue_date) from None
            raise
        facts = {"style": self.style, "content_type": response.headers.get("Content-Type", "")}
        return FetchedReport(self.config.name, revenue_date, ReportBody.of(response.content), self.extension,
                             facts)

    @classmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        spec = cls.description
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
