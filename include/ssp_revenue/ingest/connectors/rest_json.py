"""REST JSON SSPs (Xandr-like): API key + secret, synchronous, cursor-paginated, hourly UTC.

One business date is one request range: [start of D, start of D+1) in the
business zone, as UTC instants (end exclusive). The hourly rows are summed
into the business date, so the date boundary is exact whatever the SSP's zone
(tz_policy ``hourly_rebucketed``). All pages are landed together as one raw
object, with the range and zone they were asked for.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from ssp_revenue.core import calendar, schema
from ssp_revenue.core.errors import DataNotReady, MalformedReport
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors.base import (
    FetchedReport,
    ParsedReport,
    ReportBody,
    ReportConnector,
    UnexpectedStatus,
)

FIELDS = ("hour", "publisher_site", "placement", "geo", "platform", "impressions", "clicks",
          "revenue_usd", "currency")
MAX_PAGES = 10_000


class RestJsonConnector(ReportConnector):
    style: ClassVar[str] = "rest_json"
    expected_columns: ClassVar[tuple[str, ...]] = FIELDS
    extension: ClassVar[str] = "json.gz"
    page_size: int = 1000

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        tz = ZoneInfo(self.business_tz)
        start = calendar.date_start(revenue_date, tz)
        end = calendar.date_start(revenue_date + dt.timedelta(days=1), tz)
        headers = {"X-Api-Key": self.credentials.login, "X-Api-Secret": self.credentials.secret}
        pages: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "granularity": "hour", "limit": str(self.page_size)}
            if cursor:
                params["cursor"] = cursor
            try:
                response = self.request("GET", f"{self.config.name}/v2/revenue",
                                        revenue_date=revenue_date, params=params, headers=headers)
            except UnexpectedStatus as exc:
                if exc.status == 409 and exc.code == "DATA_NOT_READY":
                    raise DataNotReady("hours not closed yet", ssp=self.config.name,
                                       revenue_date=revenue_date) from None
                raise
            try:
                page = response.json()
            except ValueError:
                # Keep what was served: the body lands raw and fails parsing with a clear error.
                pages.append({"unparseable": response.text})
                break
            pages.append(page)
            cursor = page.get("next_cursor")
            if not cursor:
                break
        envelope = {"start": params["start"], "end": params["end"], "business_tz": self.business_tz,
                    "pages": pages}
        body = gzip.compress(json.dumps(envelope, sort_keys=True).encode(), mtime=0)
        first = pages[0] if pages and isinstance(pages[0], dict) else {}
        facts = {"style": self.style, "pages": len(pages), "totals": first.get("totals")}
        return FetchedReport(self.config.name, revenue_date, ReportBody.of(body), self.extension, facts)

    @classmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        try:
            envelope = json.loads(normalise.decompress(body))
            pages = envelope["pages"]
            tz = ZoneInfo(envelope["business_tz"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedReport(f"not a landed JSON report ({exc})") from None
        rows: list[dict[str, Any]] = []
        for number, page in enumerate(pages, start=1):
            if not isinstance(page, dict) or "data" not in page:
                raise MalformedReport(f"page {number} is not a report page (truncated or an error body)")
            rows.extend(page["data"])
        if rows:
            normalise.check_columns(list(rows[0]), FIELDS)
        stated = (pages[0] or {}).get("totals") if pages else None
        if stated and int(stated["rows"]) != len(rows):
            raise MalformedReport(f"{len(rows)} hourly rows served, the API states {stated['rows']}")
        table = _rows_table(rows)
        hours = table["hour"]
        business_dates = pc.cast(pc.local_timestamp(hours.cast(pa.timestamp("us", tz=str(tz)))),
                                 pa.date32())
        grouped = pa.table({
            "revenue_date": business_dates,
            "media": table["publisher_site"], "ad_unit": table["placement"],
            "country": table["geo"], "device": table["platform"],
            "impressions": table["impressions"], "clicks": table["clicks"],
            "revenue": table["revenue_usd"], "currency": table["currency"],
        }).group_by(["revenue_date", "media", "ad_unit", "country", "device", "currency"]).aggregate(
            [("impressions", "sum"), ("clicks", "sum"), ("revenue", "sum")]
        )
        n = grouped.num_rows
        out = pa.table({
            "revenue_date": grouped["revenue_date"],
            "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            "media": grouped["media"], "ad_unit": grouped["ad_unit"],
            "country": grouped["country"], "device": grouped["device"],
            "impressions": grouped["impressions_sum"], "clicks": grouped["clicks_sum"],
            "revenue": grouped["revenue_sum"].cast(schema.MONEY),
            "currency": grouped["currency"],
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        })
        totals = None
        if stated:
            totals = {"impressions": int(stated["impressions"]), "clicks": int(stated["clicks"]),
                      "revenue": decimal.Decimal(str(stated["revenue_usd"]))}
        return ParsedReport(normalise.conform(out), totals)


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Strict typing of the JSON rows; a bad value names its row (1-based, across pages)."""
    columns: dict[str, list[Any]] = {name: [] for name in FIELDS}
    for number, row in enumerate(rows, start=1):
        for name in FIELDS:
            value = row.get(name)
            if value is None or isinstance(value, bool):
                raise MalformedReport(f"field {name!r} missing or null", row=number)
            columns[name].append(value)
    try:
        hour = pa.array(columns["hour"], pa.string())
        hours = pc.strptime(hour, format="%Y-%m-%dT%H:%M:%SZ", unit="us")
    except pa.ArrowInvalid:
        _first_bad(columns["hour"], lambda v: dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ"), "hour")
        raise
    ints = {}
    for name in ("impressions", "clicks"):
        if not all(isinstance(v, int) for v in columns[name]):
            _first_bad(columns[name], lambda v: v if isinstance(v, int) else int("x"), name)
        ints[name] = pa.array(columns[name], pa.int64())
    try:
        money = pc.cast(pa.array(columns["revenue_usd"], pa.string()), schema.MONEY)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        _first_bad(columns["revenue_usd"], _money, "revenue_usd")
        raise
    return pa.table({
        "hour": pc.assume_timezone(hours, "UTC"),
        "publisher_site": pa.array(columns["publisher_site"], pa.string()),
        "placement": pa.array(columns["placement"], pa.string()),
        "geo": pa.array(columns["geo"], pa.string()),
        "platform": pa.array(columns["platform"], pa.string()),
        "impressions": ints["impressions"], "clicks": ints["clicks"],
        "revenue_usd": money,
        "currency": pa.array(columns["currency"], pa.string()),
    })


def _money(value: Any) -> decimal.Decimal:
    text = str(value)
    number = decimal.Decimal(text)  # raises on "12x45"
    if not number.is_finite() or number.as_tuple().exponent < -schema.MONEY_SCALE:  # type: ignore[operator]
        raise ValueError(text)
    if abs(number) >= decimal.Decimal(10) ** (18 - schema.MONEY_SCALE):
        raise ValueError(text)
    return number


def _first_bad(values: list[Any], check: Any, name: str) -> None:
    for number, value in enumerate(values, start=1):
        try:
            check(value)
        except (ValueError, TypeError, decimal.InvalidOperation):
            raise MalformedReport(f"field {name!r}: {value!r} is not valid", row=number) from None
