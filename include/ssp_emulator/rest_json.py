"""REST JSON style (Xandr-like): API key + secret, synchronous, cursor-paginated,
hourly UTC rows, USD as decimal strings, end-exclusive ranges, per-window rate limit."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, request

from ssp_emulator.figures import hourly_between
from ssp_emulator.http import decimal_text, error_response
from ssp_emulator.state import EmulatorState
from ssp_revenue.core.clock import parse_instant

PAGE_MAX = 1000


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])


def register(app: Flask, state: EmulatorState, ssp: str) -> None:
    window: dict[str, float] = {"start": time.monotonic(), "count": 0}
    lock = threading.Lock()

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

    @app.get(f"/{ssp}/v2/revenue", endpoint=f"{ssp}_revenue")
    def revenue() -> Response:
        profile = state.profile(ssp)
        if (
            request.headers.get("X-Api-Key") != profile.client_id
            or request.headers.get("X-Api-Secret") != profile.client_secret
            or state.faults.take(ssp, "revoked_credentials")
        ):
            return error_response(401, "unauthorized", "invalid API key or secret")
        if limited := rate_limited():
            return limited
        try:
            start = parse_instant(request.args["start"])
            end = parse_instant(request.args["end"])  # exclusive
        except (KeyError, ValueError):
            return error_response(400, "invalid_request", "start and end (ISO-8601, end exclusive) required")
        if request.args.get("granularity", "hour") != "hour" or end <= start:
            return error_response(400, "invalid_request", "granularity=hour and end > start")
        business_date = start.astimezone(ZoneInfo("Asia/Tokyo")).date()
        closed_at = end + dt.timedelta(hours=profile.available_after_hours)  # hours close one by one
        if state.now < closed_at or state.faults.take(
            ssp, "not_ready", business_date
        ):
            return error_response(409, "DATA_NOT_READY", "hours in this range are not closed yet")
        limit = min(PAGE_MAX, int(request.args.get("limit", PAGE_MAX)))
        offset = _offset(request.args.get("cursor"))
        hourly = hourly_between(profile, start, end, state.seed, state.now)
        table, stated, bad_row = state.with_content_faults(ssp, business_date, hourly, consume=False)
        if offset + limit >= table.num_rows:  # the last page uses up one time of each fault
            state.with_content_faults(ssp, business_date, hourly, consume=True)
        page = table.slice(offset, limit).to_pylist()
        rows: list[dict[str, Any]] = []
        for index, row in enumerate(page, start=offset + 1):
            micros = row.pop("revenue_micros", None)
            out = {
                "hour": row["hour_start"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "publisher_site": row["site"],
                "placement": row["ad_unit_code"],
                "geo": row["country_code"],
                "platform": row["device_category"],
                "impressions": row["impressions"],
                "clicks": row["clicks"],
                "currency": row["currency"],
            }
            if micros is not None:
                out["revenue_usd"] = decimal_text(micros)
            else:
                out["revenue"] = decimal_text(row["revenue"])
            if bad_row == index:
                out["revenue_usd"] = "12x45"
            rows.append(out)
        next_offset = offset + len(page)
        body = {
            "data": rows,
            "next_cursor": _cursor(next_offset) if next_offset < table.num_rows else None,
            "totals": {
                "rows": stated["rows"],
                "impressions": stated["impressions"],
                "clicks": stated["clicks"],
                "revenue_usd": decimal_text(stated["revenue_micros"]),
            },
        }
        text = json.dumps(body)
        if state.faults.take(ssp, "truncated", business_date):
            text = text[: len(text) // 2]
        return Response(text, mimetype="application/json")


