"""An SSP of a described style (include/config/styles/), served from the same description.

The connector reads a report by the description; this renders the emulator's figures
into it: the headers it authenticates with, the URL and the answer that means "not
ready", the encoding, delimiter and totals row, and each column in its number
format. So a new SSP of a known shape is demoed and tested without code.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import io
import json
import math
import re
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
from flask import Flask, Response, request

from ssp_emulator import text
from ssp_emulator.figures import ByTable, figures, hourly_between
from ssp_emulator.http import error_response
from ssp_emulator.state import EmulatorState, ReportNotReady
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.styles import Column, ReportStyle

# The emulator's own column for each canonical one.
SOURCE = {"revenue_date": "date", "hour": "hour_start", "media": "site", "ad_unit": "ad_unit_code",
          "country": "country_code",
          "device": "device_category", "impressions": "impressions", "clicks": "clicks",
          "revenue": "revenue_micros", "currency": "currency"}
MONEY_SOURCES = ("revenue_micros", "revenue")  # the second: a renamed column (a drift fault)
PAGE_MAX = 1000


def _number(values: pa.Array | pa.ChunkedArray, number_format: str) -> pa.Array:
    """Integers in a number format: 1234567 -> "1,234,567" (thousands) or "1.234.567"."""
    if number_format in ("plain", "decimal_comma"):
        return pc.cast(values, pa.string())
    grouped = text.thousands(values)
    return pc.replace_substring(grouped, ",", ".") if number_format == "thousands_decimal_comma" else grouped


def _money(micros: pa.Array | pa.ChunkedArray, column: Column) -> pa.Array:
    numbers = pa.array(pc.cast(micros, pa.int64()).to_numpy(zero_copy_only=False))
    if column.unit == "micros":
        return _number(numbers, column.number_format)
    if column.unit == "whole":  # the profile's amounts are whole units already (money_unit_micros)
        return _number(pc.divide(numbers, 1_000_000), column.number_format)
    exact = text.decimals(numbers)  # "-1234.500000": six places, exactly
    if column.number_format == "plain":
        return exact
    grouping = "plain" if column.number_format == "decimal_comma" else column.number_format
    whole = _number(pc.divide(pc.abs(numbers), 1_000_000), grouping)
    point = "," if "decimal_comma" in column.number_format else "."
    body = pc.binary_join_element_wise(whole, pc.utf8_slice_codeunits(exact, start=-6), point)
    return pc.if_else(pc.less(numbers, 0), pc.binary_join_element_wise("-", body, ""), body)


def _render(values: pa.ChunkedArray, column: Column | None) -> pa.Array:
    if column is None:
        return pc.cast(values, pa.string())
    if column.kind == "date":
        return text.dates(values, column.format)
    if column.kind == "integer":
        return _number(values, column.number_format)
    if column.kind == "money":
        return _money(values, column)
    return pc.cast(values, pa.string())


def _total(column: Column | None, value: int) -> str:
    if column is None:
        return ""
    rendered = _money(pa.array([value]), column) if column.kind == "money" else _number(
        pa.array([value]), column.number_format)
    return str(rendered[0].as_py())


def register_described(app: Flask, state: EmulatorState, ssp: str, spec: ReportStyle) -> None:
    """The routes of one SSP of a described style."""
    if spec.body_format == "json":
        _register_json(app, state, ssp, spec)
        return
    by_source = {SOURCE[c.to]: c for c in spec.columns}
    path = re.sub(r"{date}", "<date>", spec.request.path.replace("{ssp}", ssp))
    date_param = next((k for k, v in spec.request.params.items() if v == "{date}"), None)

    def report(date: str | None = None) -> Response:
        if not _authorized(state, ssp, spec):
            return error_response(401, "unauthorized", "invalid credentials")
        try:
            day = dt.date.fromisoformat(date if date is not None else request.args[date_param or "date"])
        except (KeyError, ValueError):
            return Response(f"{date_param or 'date'}=YYYY-MM-DD required", status=400)
        try:
            table, stated, bad_row = state.served_table(ssp, day)
        except ReportNotReady:
            return Response("not ready", status=spec.request.not_ready_status)
        names = [c for c in table.column_names if c != "currency" or "currency" in by_source]
        cells: list[pa.Array] = []
        names_row: list[str] = []
        totals: list[str] = []
        for position, name in enumerate(names):
            column = by_source.get(name) or (by_source.get("revenue_micros") if name == "revenue" else None)
            rendered = _render(table[name], column)
            if name in MONEY_SOURCES and bad_row is not None:
                rendered = text.with_cell(rendered, bad_row - 1, "12x45")
            cells.append(rendered)
            names_row.append(by_source[name].name if name in by_source else name)
            if position == 0 and spec.totals_label is not None:
                totals.append(spec.totals_label)
            elif name in ("impressions", "clicks"):
                totals.append(_total(column, stated[name]))
            elif name in MONEY_SOURCES:
                totals.append(_total(column, stated["revenue_micros"]))
            else:
                totals.append("")
        sink = io.StringIO()
        writer = csv.writer(sink, delimiter=spec.delimiter, lineterminator="\r\n")
        writer.writerow(names_row)
        sink.write(text.csv_lines(cells, "\r\n", spec.delimiter))
        if spec.totals_label is not None:
            writer.writerow(totals)
        body = sink.getvalue().encode(spec.encoding)
        if state.faults.take(ssp, "truncated", day):
            body = body[: len(body) // 2]
        return Response(body, headers={"Content-Type": spec.content_type})

    app.add_url_rule(f"/{path}", endpoint=f"{ssp}_described_report", view_func=report,
                     methods=[spec.request.method])


def refusal(state: EmulatorState, ssp: str, spec: ReportStyle) -> Response | None:
    """The 401 for a request without this SSP's credentials; None when it may pass."""
    if _authorized(state, ssp, spec):
        return None
    return error_response(401, "unauthorized", "invalid credentials")


def _authorized(state: EmulatorState, ssp: str, spec: ReportStyle) -> bool:
    profile = state.profile(ssp)
    for header, field in spec.headers.items():
        if request.headers.get(header) != (profile.client_id if field == "login" else profile.client_secret):
            return False
    return not state.faults.take(ssp, "revoked_credentials")


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(cursor: str | None) -> int:
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"]) if cursor else 0


def _json_column(values: pa.ChunkedArray | pa.Array, column: Column | None) -> list[Any]:
    """One page column as the JSON an SSP serves, rendered in Arrow compute (a 1000-row page
    through ``to_pylist`` and a per-cell conversion cost the emulator more than the client's parse)."""
    rendered: Any = values
    if column is None:  # a money column the description does not name (a renamed-column fault)
        rendered = text.decimals(values) if pa.types.is_integer(values.type) else values
    elif column.kind == "instant":
        # Whole seconds: on a microsecond timestamp Arrow's %S would print the fraction.
        rendered = text.each_distinct(values, lambda distinct: pc.strftime(
            distinct.cast(pa.timestamp("s", tz="UTC")), format=column.format))
    elif column.kind == "date":
        rendered = text.dates(values, column.format)
    elif column.kind == "money" and column.unit == "decimal":
        rendered = text.decimals(values)
    elif column.kind == "money" and column.unit == "whole":
        rendered = pc.divide(values, 1_000_000)  # the profile's amounts are whole units
    cells: list[Any] = rendered.to_pylist()
    return cells


def _json_value(value: int, column: Column | None) -> Any:
    """A stated total, as its column's cells are written."""
    return _json_column(pa.array([value], pa.int64()), column)[0]


def _json_rows(page: pa.Table, by_source: dict[str, Column], first: int, bad_row: int | None,
               money: Column | None) -> list[dict[str, Any]]:
    """The page's rows as dicts in the table's column order; data row ``bad_row`` (1-based,
    across pages; the page starts at row ``first``) gets a malformed amount."""
    names: list[str] = []
    cells: list[list[Any]] = []
    for name in page.column_names:
        column = by_source.get(name)
        if column is None and name not in MONEY_SOURCES:
            continue
        names.append(column.name if column is not None else name)
        cells.append(_json_column(page[name], column))
    rows = [dict(zip(names, values, strict=True)) for values in zip(*cells, strict=True)]
    return _with_bad_row(rows, first, bad_row, money)


def _with_bad_row(rows: list[dict[str, Any]], first: int, bad_row: int | None,
                  money: Column | None) -> list[dict[str, Any]]:
    if bad_row is not None and money is not None and first <= bad_row < first + len(rows):
        rows = list(rows)
        rows[bad_row - first] = {**rows[bad_row - first], money.name: "12x45"}
    return rows


def _register_json(app: Flask, state: EmulatorState, ssp: str, spec: ReportStyle) -> None:
    """Pages of JSON rows, hourly or daily, with stated totals and a cursor to the next page."""
    by_source = {SOURCE[c.to]: c for c in spec.columns}
    money = spec.column("revenue")
    window: dict[str, float] = {"start": time.monotonic(), "count": 0}
    lock = threading.Lock()
    param_of = {v.strip("{}"): k for k, v in spec.request.params.items() if v.startswith("{")}
    # A served table's rows as JSON dicts, rendered once: a report's pages are asked for one by
    # one (50 for 50k rows), and rendering each page paid Arrow's per-call cost 50 times. Two
    # tables: a report is asked for page after page, and 50k rows as dicts take tens of MB.
    rendered = ByTable(size=2)

    @functools.lru_cache(maxsize=64)
    def stated_revenue(micros: int) -> Any:  # the same on every page of a report
        return _json_value(micros, money)

    def rate_limited() -> Response | None:
        profile = state.profile(ssp)
        if profile.rate_limit_per_window <= 0:
            return None
        with lock:
            now = time.monotonic()
            if now - window["start"] >= profile.rate_window_seconds:
                window["start"], window["count"] = now, 0
            window["count"] += 1
            if window["count"] > profile.rate_limit_per_window:
                wait = math.ceil(profile.rate_window_seconds - (now - window["start"]))
                return error_response(429, "rate_limited", "requests per minute exceeded",
                                      {"Retry-After": str(max(1, wait))})
        return None

    def not_ready() -> Response:
        return error_response(spec.request.not_ready_status, spec.request.not_ready_code or "not_ready",
                              "the report is not ready yet")

    def report(date: str | None = None) -> Response:
        profile = state.profile(ssp)
        if not _authorized(state, ssp, spec):
            return error_response(401, "unauthorized", "invalid credentials")
        if limited := rate_limited():
            return limited
        if spec.hourly:
            try:
                start = parse_instant(request.args[param_of["start"]])
                end = parse_instant(request.args[param_of["end"]])  # exclusive
            except (KeyError, ValueError):
                return error_response(400, "invalid_request",
                                      "start and end (ISO-8601, end exclusive) required")
            if end <= start:
                return error_response(400, "invalid_request", "end > start")
            business_date = start.astimezone(ZoneInfo("Asia/Tokyo")).date()
            closed_at = end + dt.timedelta(hours=profile.available_after_hours)  # hours close one by one
            if state.now < closed_at or state.faults.take(ssp, "not_ready", business_date):
                return not_ready()
            rows_now = hourly_between(profile, start, end, state.seed, state.now)
        else:
            try:
                business_date = dt.date.fromisoformat(date or request.args[param_of.get("date", "date")])
            except (KeyError, ValueError):
                return error_response(400, "invalid_request", "date=YYYY-MM-DD required")
            try:
                state.served_table(ssp, business_date)  # raises until the day is available
            except ReportNotReady:
                return not_ready()
            rows_now = figures(profile, business_date, state.seed, state.now)
        limit = min(PAGE_MAX, int(request.args.get("limit", PAGE_MAX)))
        offset = _offset(request.args.get(spec.request.cursor_param or "cursor"))
        table, stated, bad_row = state.with_content_faults(ssp, business_date, rows_now, consume=False)
        if offset + limit >= table.num_rows:  # the last page uses up one time of each fault
            state.with_content_faults(ssp, business_date, rows_now, consume=True)
        every = rendered.get(table, lambda whole: _json_rows(whole, by_source, 1, None, money))
        out_rows = _with_bad_row(every[offset:offset + limit], offset + 1, bad_row, money)
        next_offset = offset + len(out_rows)
        body: dict[str, Any] = {spec.rows_field: out_rows}
        if spec.request.next_field:
            body[spec.request.next_field] = _cursor(next_offset) if next_offset < table.num_rows else None
        if spec.totals_field:
            names = spec.totals_names
            body[spec.totals_field] = {
                names["rows"]: stated["rows"], names["impressions"]: stated["impressions"],
                names["clicks"]: stated["clicks"],
                names["revenue"]: stated_revenue(stated["revenue_micros"]),
            }
        # msgspec: json.dumps of a 1000-row page was a tenth of the emulator's CPU.
        text_body = msgspec.json.encode(body)
        if state.faults.take(ssp, "truncated", business_date):
            text_body = text_body[: len(text_body) // 2]
        return Response(text_body, mimetype=spec.content_type)

    path = re.sub(r"{date}", "<date>", spec.request.path.replace("{ssp}", ssp))
    app.add_url_rule(f"/{path}", endpoint=f"{ssp}_described_pages", view_func=report,
                     methods=[spec.request.method])
