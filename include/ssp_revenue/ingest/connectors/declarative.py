"""Connectors for the report styles described in YAML (``core.styles``): one class per description.

Parsing is exact: every number is read from its text by the column's declared
format into an integer or a Decimal (never a float), a bad cell is named by its
column and data row (1-based, after the header), and the totals row is checked
against the rows as the SSP stated them, before any tax is stripped.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import functools
import gzip
import io
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ssp_revenue.core import calendar, schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import DataNotReady, MalformedReport, ValidationFailed
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.styles import DIMENSIONS, Column, ReportStyle, Tax
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
# zlib's default: level 9 took 4x the time for 13 % less (a 50k-row JSON report: 0.28 s, 0.64 MB
# against 0.065 s, 0.73 MB); raw objects are kept, but a day's is well under a megabyte.
RAW_GZIP_LEVEL = 6


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
    if not -(2**63) <= value < 2**63:
        raise MalformedReport(f"column {column.name!r}: {text!r} is beyond a 64-bit count", row=row)
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


def _as_served(content: bytes, page: Any) -> bytes:
    """A page's JSON as the SSP sent it, when it is plain UTF-8 (else as parsed, re-encoded)."""
    if content.startswith(b"\xef\xbb\xbf"):
        return json.dumps(page).encode()
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(page).encode()
    return content


def _page_head(content: bytes, fields: tuple[str | None, ...]) -> dict[str, Any] | None:
    """The top-level ``fields`` of a JSON object page, decoded alone; None if the page is not
    a JSON object in plain UTF-8 (the caller then decodes it whole, as before).

    Fetching needs only the cursor and the stated totals of a page: its rows are read once,
    by the parse of the landed object. Decoding every row here as well cost as much again.
    """
    if content.startswith(b"\xef\xbb\xbf"):
        return None
    try:
        content.decode("utf-8")  # msgspec checks only the strings it decodes
        members = msgspec.json.decode(content, type=dict[str, msgspec.Raw])
        return {name: msgspec.json.decode(members[name]) for name in fields if name and name in members}
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def _envelope(start: str, end: str, business_tz: str, pages: list[bytes]) -> bytes:
    """The landed object: the range, the zone and every page as served, in one JSON document.

    The pages go in as their bytes: re-serialising 50k parsed rows (sorted keys) and
    compressing at gzip's level 9 were two thirds of fetching a 50k-row report.
    """
    def text(value: str) -> bytes:
        return json.dumps(value).encode()

    return (b'{"business_tz": ' + text(business_tz) + b', "end": ' + text(end) + b', "pages": ['
            + b", ".join(pages) + b'], "start": ' + text(start) + b"}")


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
        served: list[bytes] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            asked = dict(params)
            if cursor and spec.request.cursor_param:
                asked[spec.request.cursor_param] = cursor
            response = self._ask(revenue_date, values, asked, headers)
            head = _page_head(response.content, (spec.request.next_field, spec.totals_field))
            if head is not None:  # plain UTF-8 JSON: it lands as served
                page, content = head, response.content
            else:
                try:
                    page = response.json()
                except ValueError:
                    # Keep what was served: the body lands raw and fails parsing with a clear error.
                    pages.append({"unparseable": response.text})
                    served.append(json.dumps(pages[-1]).encode())
                    break
                content = _as_served(response.content, page)
            pages.append(page)
            served.append(content)
            cursor = page.get(spec.request.next_field) if spec.request.next_field and isinstance(page, dict) \
                else None
            if not cursor:
                break
        body = gzip.compress(_envelope(start, end, self.business_tz, served), compresslevel=RAW_GZIP_LEVEL,
                             mtime=0)
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
        header = next(csv.reader(io.StringIO(text), delimiter=spec.delimiter), None)
        if header is None:
            raise MalformedReport("empty report")
        header = [cell.strip() for cell in header]
        normalise.check_columns(header, spec.expected_columns)
        read, stated = _read_csv(spec, config, text, header)
        n, columns = read.rows, read.columns
        table = pa.table({
            "revenue_date": columns["revenue_date"],
            "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            **{k: columns[k] for k in ("media", "ad_unit", "country", "device")},
            "impressions": columns["impressions"],
            "clicks": columns["clicks"],
            "revenue": columns["revenue"],
            "currency": columns.get("currency", pa.repeat(pa.scalar(config.currency, pa.string()), n)),
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        })
        return ParsedReport(normalise.conform(table), stated)

    @classmethod
    def _parse_json(cls, config: SspConfig, body: bytes) -> ParsedReport:
        """The landed pages (one raw object: the range, the zone and every page as served)."""
        spec = cls.description
        try:
            envelope = _json_document(normalise.decompress(body))
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


@dataclasses.dataclass(frozen=True)
class _CsvRead:
    """A described CSV report's data rows as typed columns (revenue without tax), the sum of
    the amounts as stated (with tax), and its totals row's cells, if it has one."""

    columns: dict[str, pa.Array]
    rows: int
    stated_money: decimal.Decimal
    total_row: list[str] | None


def _read_csv(spec: ReportStyle, config: SspConfig, text: str,
              header: list[str]) -> tuple[_CsvRead, dict[str, Any] | None]:
    """The data rows and the checked totals: in whole columns when that reader answers and
    the totals agree, else cell by cell (whose errors name the bad cell, or the totals row)."""
    fast = _CsvColumns.read(spec, config, text, header)
    if fast is not None:
        try:
            return fast, _stated_totals(spec, config, header, fast)
        except (MalformedReport, ValidationFailed):
            pass  # the exact reader's words for it
    exact = _CsvRows.read(spec, config, text, header)
    return exact, _stated_totals(spec, config, header, exact)


def _tax(spec: ReportStyle, config: SspConfig) -> Tax | None:
    """The tax to strip from the amounts: the description's, when the SSP's entry switches it on."""
    money = spec.column("revenue")
    tax = money.tax if money is not None else None
    return tax if tax is not None and config.options.get(tax.when) else None


def _stated_totals(
    spec: ReportStyle, config: SspConfig, header: list[str], read: _CsvRead
) -> dict[str, Any] | None:
    """The totals row, checked against the rows as the SSP stated them (before any tax is stripped)."""
    if read.total_row is None:
        return None
    by_target = {c.to: c for c in spec.columns}
    money = by_target["revenue"]
    index = {name: i for i, name in enumerate(header)}
    at = read.rows + 1
    if len(read.total_row) != len(header):
        raise MalformedReport(f"{len(read.total_row)} cells, the header has {len(header)}", row=at)
    stated_revenue = read_money(money, read.total_row[index[money.name]], at)
    if stated_revenue != read.stated_money:
        taxed = " (tax included)" if money.tax is not None else ""
        raise ValidationFailed(
            f"totals row states {stated_revenue:,} {config.currency}, the rows add up to "
            f"{read.stated_money:,}", failures=[f"total revenue{taxed} mismatch"], row=at)
    stated: dict[str, Any] = {"rows": read.rows}
    for target in ("impressions", "clicks"):
        column = by_target[target]
        stated[target] = read_integer(column, read.total_row[index[column.name]], at)
    return stated


class _CsvRows:
    """Cell by cell in Python: the exact reader, and the one that names a bad cell's column and row."""

    @staticmethod
    def read(spec: ReportStyle, config: SspConfig, text: str, header: list[str]) -> _CsvRead:
        rows = list(csv.reader(io.StringIO(text), delimiter=spec.delimiter))
        index = {name: i for i, name in enumerate(header)}
        data, total_row = rows[1:], None
        if spec.totals_label is not None:
            if len(rows) < 2 or rows[-1][:1] != [spec.totals_label]:
                raise MalformedReport(f"no totals row ({spec.totals_label}) at the end: "
                                      "the report is cut short")
            data, total_row = rows[1:-1], rows[-1]
        by_target = {c.to: c for c in spec.columns}
        tax = _tax(spec, config)
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
        types = {"date": pa.date32(), "integer": pa.int64(), "money": schema.MONEY}
        arrays = {target: pa.array(values, types.get(by_target[target].kind, pa.string()))
                  for target, values in columns.items()}
        return _CsvRead(arrays, len(data), stated_money, total_row)


class _CsvColumns:
    """Whole columns in Arrow compute, for a report whose every cell is plainly well formed.

    It answers only when its result is the exact reader's: ``read`` returns None for a
    report with anything it would have to judge (quotes, blank lines, a cell that is not
    plainly a number of its format, amounts too large for 64-bit arithmetic), and the
    exact reader then reads it, or names the bad cell. Text and date cells repeat a few
    values, so those are read by the exact rules once per distinct value. A 50k-row
    ``jp_csv`` export: 0.14 s, against 0.70 s cell by cell (``make bench ARGS='--only parse'``).
    """

    # What the exact reader accepts, narrowed to ASCII and to values that need no judging.
    INTEGER = {"plain": r"-?\d+", "thousands": r"-?(\d{1,3}(,\d{3})*|\d+)", "decimal_comma": r"-?\d+",
               "thousands_decimal_comma": r"-?(\d{1,3}(\.\d{3})*|\d+)"}
    FRACTION = {"plain": r"(\.\d{1,6})?", "thousands": r"(\.\d{1,6})?", "decimal_comma": r"(,\d{1,6})?",
                "thousands_decimal_comma": r"(,\d{1,6})?"}
    SPACE = " \t"

    @classmethod
    def read(cls, spec: ReportStyle, config: SspConfig, text: str, header: list[str]) -> _CsvRead | None:
        if "\x00" in text or text[:1] in ("\r", "\n") or any(
                blank in text for blank in ("\n\n", "\n\r", "\r\r")):
            return None  # blank lines: the csv module's rows, not Arrow's
        if '"' in text and not cls.quotes_enclose_whole_cells(text, spec.delimiter):
            return None  # a quote that does not plainly enclose a whole cell: the csv module's rules
        names = [f"c{i}" for i in range(len(header))]
        try:
            table = pacsv.read_csv(
                pa.py_buffer(text.encode()),
                read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
                parse_options=pacsv.ParseOptions(delimiter=spec.delimiter),
                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                     strings_can_be_null=False))
        except pa.ArrowInvalid:
            return None  # a row with another number of cells than the header
        total_row = None
        if spec.totals_label is not None:
            if not table.num_rows or table[0][table.num_rows - 1].as_py() != spec.totals_label:
                return None
            total_row = [table[i][table.num_rows - 1].as_py() for i in range(len(names))]
            table = table.slice(0, table.num_rows - 1)
        index = {name: i for i, name in enumerate(header)}
        tax = _tax(spec, config)
        columns: dict[str, pa.Array] = {}
        stated_money = decimal.Decimal(0)
        for column in spec.columns:
            cells = table[index[column.name]].combine_chunks()
            if column.kind == "date":
                read = cls._by_distinct(cells, functools.partial(_date, column.format), pa.date32())
            elif column.kind == "integer":
                read = cls._integers(cells, column)
            elif column.kind == "money":
                micros = cls._micros(cells, column)
                if micros is None:
                    return None
                stated_money = pc.sum(_decimals(micros)).as_py() if len(micros) else decimal.Decimal(0)
                read = _decimals(micros if tax is None else _without_tax(micros, tax.rate))
            else:
                read = cls._by_distinct(cells, str.strip, pa.string())
            if read is None:
                return None
            columns[column.to] = read
        return _CsvRead(columns, table.num_rows, stated_money, total_row)

    @staticmethod
    def quotes_enclose_whole_cells(text: str, delimiter: str) -> bool:
        """Every quote opens or closes a whole cell in quotes, with no quote or line end
        inside: right after the start, a delimiter or a line end, right before one or the
        end (what both readers read alike).

        Checked on the quotes' positions in numpy, taken in pairs: a regular expression
        finding each such cell took 0.23 s of a 50k-row export whose every cell is quoted,
        most of reading it in whole columns.
        """
        chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one element a character
        quotes = np.flatnonzero(chars == ord('"'))
        if len(quotes) % 2:
            return False
        opens, closes = quotes[0::2], quotes[1::2]
        bounds = np.array([ord(delimiter), ord("\r"), ord("\n")], dtype=np.uint32)
        after_bound = (opens == 0) | np.isin(chars[opens - 1], bounds)  # opens[0] - 1 wraps: ruled by == 0
        last = len(chars) - 1
        before_bound = (closes == last) | np.isin(chars[np.minimum(closes + 1, last)], bounds)
        line_ends = np.flatnonzero((chars == ord("\r")) | (chars == ord("\n")))
        one_line = np.searchsorted(line_ends, opens) == np.searchsorted(line_ends, closes)
        return bool(np.all(after_bound & before_bound & one_line))

    @staticmethod
    def _by_distinct(cells: pa.Array, reader: Any, type_: pa.DataType) -> pa.Array | None:
        encoded = cells.dictionary_encode()
        try:
            values = [reader(v) for v in encoded.dictionary.to_pylist()]
        except ValueError:
            return None
        return pa.array(values, type_).take(encoded.indices)

    @classmethod
    def _digits(cls, cells: pa.Array, column: Column, pattern: str) -> pa.Array | None:
        """The cells as plain ASCII digits (separators gone, "." for the point), or None."""
        trimmed = pc.utf8_trim(cells, cls.SPACE)
        if not pc.all(pc.match_substring_regex(trimmed, f"^{pattern}$")).as_py() and len(cells):
            return None
        _, group, point = _FORMATS[column.number_format]
        digits = pc.replace_substring(trimmed, group, "") if group else trimmed
        return pc.replace_substring(digits, ",", ".") if point == "," else digits

    @classmethod
    def _integers(cls, cells: pa.Array, column: Column) -> pa.Array | None:
        digits = cls._digits(cells, column, cls.INTEGER[column.number_format])
        if digits is None:
            return None
        try:
            return pc.cast(digits, pa.int64())
        except pa.ArrowInvalid:
            return None  # beyond 64 bits: the exact reader says what it makes of it

    @classmethod
    def _micros(cls, cells: pa.Array, column: Column) -> np.ndarray | None:
        """Each amount in micros (int64), or None when one needs the exact reader."""
        fraction = cls.FRACTION[column.number_format] if column.unit == "decimal" else ""
        digits = cls._digits(cells, column, cls.INTEGER[column.number_format] + fraction)
        if digits is None:
            return None
        try:
            if column.unit == "decimal":
                exact = pc.cast(digits, pa.decimal128(18, schema.MONEY_SCALE))
                micros = _unscaled(exact)
            else:
                micros = np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
        except pa.ArrowInvalid:
            return None
        limit = int(MAX_MONEY) * (1 if column.unit == "whole" else 10**schema.MONEY_SCALE)
        if len(micros) and int(np.abs(micros).max()) >= limit:
            return None
        if column.unit == "whole":
            micros = micros * 10**schema.MONEY_SCALE
        return micros


def _date(format: str, text: str) -> dt.date:
    return dt.datetime.strptime(text.strip(), format).date()


def _unscaled(values: pa.Array) -> np.ndarray:
    """The unscaled integers of a decimal128 array that fits in 64 bits (its low words)."""
    words = np.frombuffer(values.buffers()[1], dtype=np.int64)
    return words[values.offset * 2:(values.offset + len(values)) * 2:2].copy()


def _decimals(micros: np.ndarray) -> pa.Array:
    """int64 micros as the money type, exactly (its unscaled value, sign-extended to 128 bits)."""
    words = np.empty(len(micros) * 2, dtype=np.int64)
    words[0::2] = micros
    words[1::2] = np.where(micros < 0, -1, 0)
    return pa.Array.from_buffers(schema.MONEY, len(micros), [None, pa.py_buffer(words.tobytes())])


def _without_tax(micros: np.ndarray, rate: decimal.Decimal) -> np.ndarray:
    """``strip_tax`` on whole columns: x 100 / (100 + rate x 100), half-to-even, in integers.

    The exact quotient is a fraction of small integers, so it is never within Decimal's 28
    digits of a half without being one: rounding it once, exactly, is what ``strip_tax`` gives.
    """
    ratio = (100 + rate * 100).as_integer_ratio()  # n / d
    numerator, denominator = 100 * ratio[1], ratio[0]  # amount x 100 d / n
    if len(micros) and int(np.abs(micros).max()) * numerator >= 2**62:
        return np.array([int(strip_tax(decimal.Decimal(int(m)).scaleb(-schema.MONEY_SCALE), rate)
                             .scaleb(schema.MONEY_SCALE)) for m in micros], dtype=np.int64)
    scaled = micros * numerator
    quotient, remainder = np.divmod(scaled, denominator)
    twice = remainder * 2
    quotient += (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    return quotient


def _json_document(text: bytes) -> Any:
    """A JSON document, decoded by msgspec (2.5x the standard library's pace on a 50k-row
    report) when it is strict JSON, else by the standard library, whose reading (NaN,
    Infinity, another encoding) the rows are then judged by, as before."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def _json_table(spec: ReportStyle, rows: list[dict[str, Any]]) -> pa.Table:
    """Strict typing of the JSON rows; a bad value names its row (1-based, across pages)."""
    typed = _json_columns(spec, rows)
    if typed is not None:
        return typed
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


def _json_columns(spec: ReportStyle, rows: list[dict[str, Any]]) -> pa.Table | None:
    """The rows typed a column at a time by Arrow's own inference, when it leaves nothing to judge.

    Inference that gives int64 saw only ints (a bool or a float makes it fail or give another
    type), and string saw only str, so each column then holds what the row-by-row typing
    would give it; anything else (a null or missing field, a bool, a float, a number as
    text, an unreadable instant or amount) returns None and the rows are typed one by one,
    which names the row. Row by row was 0.15 s of a 50k-row report.
    """
    if not rows:
        return None
    out: dict[str, pa.Array] = {}
    for column in spec.columns:
        try:
            values = pa.array([row.get(column.name) for row in rows])
        except (pa.ArrowException, OverflowError, TypeError, AttributeError):
            return None
        want = pa.int64() if column.kind == "integer" else pa.string()
        if values.null_count or values.type != want:
            return None
        try:
            if column.kind in ("instant", "date"):
                parsed = pc.strptime(values, format=column.format, unit="us")
                out[column.to] = pc.assume_timezone(parsed, "UTC") if column.kind == "instant" \
                    else pc.cast(parsed, pa.date32())
            elif column.kind == "money":
                out[column.to] = pc.cast(values, schema.MONEY)
            else:
                out[column.to] = values
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
    if "currency" not in out:
        return None
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
