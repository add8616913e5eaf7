"""Monthly statements: read one (JSON or CSV) exactly, and refuse one that cannot be used.

A statement is what the SSP says it pays for a month: itemised lines (the
month's revenue, invalid traffic clawed back, a late deduction for an earlier
month, fees, a hold) that must add up to its total, in its currency; a
statement converted to another currency states the payment rate. Amounts are
read as exact decimals (JSON numbers too: never floats). Every refusal names
the SSP, the month, the file and the line.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import io
import json
import re
from collections.abc import Mapping
from typing import Any

from ssp_revenue.core.calendar import Month
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.errors import StatementRejected
from ssp_revenue.core.registry import SspConfig

CSV_COLUMNS = ("statement_id", "account", "month", "currency", "issued_at", "replaces",
               "payment_fx_rate", "kind", "for_month", "description", "amount")
KIND = re.compile(r"^[a-z][a-z_]{0,39}$")
TOTAL = "total"  # the CSV row that carries the statement's total


@dataclasses.dataclass(frozen=True)
class StatementLine:
    line: int  # JSON: position in "lines" (1-based); CSV: line number in the file
    kind: str  # revenue, invalid_traffic, late_deduction, fee, hold, ...
    for_month: str  # the month the line is about (an earlier one for a late deduction)
    description: str
    amount: decimal.Decimal


@dataclasses.dataclass(frozen=True)
class Statement:
    ssp: str
    month: Month
    statement_id: str
    account: str
    currency: str
    issued_at: dt.datetime
    replaces: str | None
    payment_fx_rate: decimal.Decimal | None
    lines: tuple[StatementLine, ...]
    total: decimal.Decimal
    sha256: str
    raw_key: str

    def itemised(self) -> dict[str, decimal.Decimal]:
        """What the lines other than this month's revenue amount to, by kind (and month if another)."""
        out: dict[str, decimal.Decimal] = {}
        for item in self.lines:
            if item.kind == "revenue" and item.for_month == str(self.month):
                continue
            label = item.kind if item.for_month == str(self.month) else f"{item.kind} for {item.for_month}"
            out[label] = out.get(label, decimal.Decimal(0)) + item.amount
        return out


class _Reader:
    """Reading one body: every error carries the SSP, month and file."""

    def __init__(self, ssp: str, month: Month, file: str) -> None:
        self.ssp, self.month, self.file = ssp, month, file

    def fail(self, message: str, line: int | None = None) -> StatementRejected:
        return StatementRejected(f"statement for {self.month}: {message}", ssp=self.ssp, file=self.file,
                                 row=line)

    def amount(self, value: object, what: str, line: int | None) -> decimal.Decimal:
        if isinstance(value, bool) or value is None or isinstance(value, float):
            raise self.fail(f"{what} must be a decimal string, got {value!r}", line)
        try:
            number = decimal.Decimal(str(value).strip().replace(",", ""))
        except decimal.InvalidOperation:
            raise self.fail(f"{what} {value!r} is not a number", line) from None
        if not number.is_finite() or number.as_tuple().exponent < -6:  # type: ignore[operator]
            raise self.fail(f"{what} {value!r} has more than 6 decimals", line)
        return number

    def month_text(self, value: object, what: str, line: int | None) -> str:
        try:
            return str(Month.parse(str(value)))
        except ValueError:
            raise self.fail(f"{what} {value!r} is not YYYY-MM", line) from None

    def text(self, data: Mapping[str, Any], key: str, line: int | None) -> str:
        value = data.get(key)
        if value is None or str(value).strip() == "":
            raise self.fail(f"{key} is missing", line)
        return str(value).strip()


def parse(config: SspConfig, month: Month, body: bytes, *, sha256: str, raw_key: str) -> Statement:
    """The statement in ``body`` (its format told by its first byte); StatementRejected if unreadable."""
    reader = _Reader(config.name, month, raw_key)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise reader.fail(f"not UTF-8 text at byte {exc.start}") from None
    head, lines, total = (_from_json(reader, text) if text.lstrip().startswith("{")
                          else _from_csv(reader, text))
    rate = head.get("payment_fx_rate")
    try:
        issued = parse_instant(reader.text(head, "issued_at", None))
    except ValueError:
        raise reader.fail(f"issued_at {head.get('issued_at')!r} is not an ISO instant") from None
    return Statement(
        ssp=config.name,
        month=Month.parse(reader.month_text(reader.text(head, "month", None), "month", None)),
        statement_id=reader.text(head, "statement_id", None), account=reader.text(head, "account", None),
        currency=reader.text(head, "currency", None).upper(), issued_at=issued,
        replaces=str(head["replaces"]).strip() if head.get("replaces") not in (None, "") else None,
        payment_fx_rate=reader.amount(rate, "payment_fx_rate", None) if rate not in (None, "") else None,
        lines=tuple(lines), total=total, sha256=sha256, raw_key=raw_key,
    )


def _line(reader: _Reader, data: Mapping[str, Any], line: int, month: str) -> StatementLine:
    kind = reader.text(data, "kind", line)
    if not KIND.match(kind):
        raise reader.fail(f"kind {kind!r} must be a lowercase word", line)
    for_month = reader.month_text(data.get("for_month") or month, "for_month", line)
    return StatementLine(line, kind, for_month, str(data.get("description") or ""),
                         reader.amount(data.get("amount"), "amount", line))


def _from_json(reader: _Reader, text: str) -> tuple[dict[str, Any], list[StatementLine], decimal.Decimal]:
    try:
        data = json.loads(text, parse_float=decimal.Decimal, parse_int=decimal.Decimal)
    except json.JSONDecodeError as exc:
        raise reader.fail(f"not JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("lines"), list):
        raise reader.fail("expected an object with a 'lines' list")
    month = str(data.get("month") or reader.month)
    lines = []
    for n, item in enumerate(data["lines"], start=1):
        if not isinstance(item, dict):
            raise reader.fail("a line must be an object", n)
        lines.append(_line(reader, item, n, month))
    head = {k: (str(v) if isinstance(v, decimal.Decimal) else v) for k, v in data.items() if k != "lines"}
    return head, lines, reader.amount(str(data.get("total")) if data.get("total") is not None else None,
                                      "total", None)


def _from_csv(reader: _Reader, text: str) -> tuple[dict[str, Any], list[StatementLine], decimal.Decimal]:
    rows = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise reader.fail(f"CSV header lacks {missing} (expected {', '.join(CSV_COLUMNS)})", 1)
    head: dict[str, Any] = {}
    lines: list[StatementLine] = []
    total: decimal.Decimal | None = None
    for row in rows:
        number = rows.line_num
        this = {k: (row.get(k) or "").strip() for k in CSV_COLUMNS[:7]}
        if not head:
            head = this
        elif this != head:
            changed = sorted(k for k in this if this[k] != head[k])
            raise reader.fail(f"{changed} differ from the first line's", number)
        if (row.get("kind") or "").strip() == TOTAL:
            if total is not None:
                raise reader.fail("a second total line", number)
            total = reader.amount(row.get("amount"), "total", number)
            continue
        lines.append(_line(reader, row, number, str(head.get("month") or reader.month)))
    if total is None:
        raise reader.fail("no total line (kind 'total')")
    return head, lines, total


def validate(statement: Statement, config: SspConfig, *, expected_month: Month, today: dt.date) -> None:
    """StatementRejected unless the statement can be reconciled; ``today`` is in the business zone."""
    reader = _Reader(config.name, expected_month, statement.raw_key)
    terms = config.statement
    if terms is None:
        raise reader.fail("the registry declares no statement for this SSP")
    if statement.account != terms.account:
        raise reader.fail(f"account {statement.account!r} is not ours at {config.name} ({terms.account!r})")
    if statement.month.next().first > today:
        raise reader.fail(f"it is for {statement.month}, which has not ended yet (today is {today})")
    if statement.month != expected_month:
        raise reader.fail(f"it is for {statement.month}, not {expected_month}")
    if statement.currency not in (config.currency, "JPY"):
        raise reader.fail(f"currency {statement.currency} is neither {config.currency} nor JPY")
    if statement.currency != config.currency and not statement.payment_fx_rate:
        raise reader.fail(f"a {statement.currency} statement for a {config.currency} account must state "
                          "its payment_fx_rate")
    if statement.payment_fx_rate is not None and statement.payment_fx_rate <= 0:
        raise reader.fail(f"payment_fx_rate {statement.payment_fx_rate} must be positive")
    if not statement.lines:
        raise reader.fail("it has no lines")
    later = [item.line for item in statement.lines
             if Month.parse(item.for_month).first > statement.month.first]
    if later:
        raise reader.fail(f"a line is for a month after {statement.month}", later[0])
    added = sum((item.amount for item in statement.lines), decimal.Decimal(0))
    if added != statement.total:
        raise reader.fail(f"its lines add up to {added}, not to its total {statement.total} "
                          f"(difference {statement.total - added})")
