"""Japanese-SSP CSV export: a token header, Shift_JIS, JST, whole yen with thousands
separators and consumption tax included, and a totals row at the end."""

from __future__ import annotations

import csv
import datetime as dt
import io

from flask import Flask, Response, jsonify, request

from ssp_revenue.emulator.state import EmulatorState, ReportNotReady

HEADERS = {
    "date": "日付", "site": "サイト", "ad_unit_code": "広告枠", "country_code": "国",
    "device_category": "デバイス", "impressions": "表示回数", "clicks": "クリック数",
    "revenue_micros": "売上(税込)",
}
TOTAL_LABEL = "合計"


def _yen(micros: int) -> str:
    return f"{micros // 1_000_000:,}"


def register(app: Flask, state: EmulatorState, ssp: str) -> None:
    @app.get(f"/{ssp}/api/v1/report.csv", endpoint=f"{ssp}_report_csv")
    def report() -> Response:
        profile = state.profile(ssp)
        if (request.headers.get("X-Auth-Token") != profile.client_secret
                or state.faults.take(ssp, "revoked_credentials")):
            response = jsonify(error="unauthorized")
            response.status_code = 401
            return response
        try:
            day = dt.date.fromisoformat(request.args["date"])
        except (KeyError, ValueError):
            return Response("date=YYYY-MM-DD required", status=400)
        try:
            table, stated, bad_row = state.served_table(ssp, day)
        except ReportNotReady:
            return Response("集計中です (not ready)", status=404)
        sink = io.StringIO()
        writer = csv.writer(sink, lineterminator="\r\n")
        names = [c for c in table.column_names if c != "currency"]
        writer.writerow([HEADERS.get(c, c) for c in names])
        for index, row in enumerate(table.to_pylist(), start=1):
            cells = []
            for name in names:
                value = row[name]
                if name == "date":
                    value = value.replace("-", "/")
                elif name in ("impressions", "clicks"):
                    value = f"{value:,}"
                elif name in ("revenue_micros", "revenue"):
                    value = "12x45" if bad_row == index else _yen(value)
                cells.append(value)
            writer.writerow(cells)
        blanks = [""] * (len(names) - 4)
        writer.writerow([TOTAL_LABEL, *blanks, f"{stated['impressions']:,}", f"{stated['clicks']:,}",
                         _yen(stated["revenue_micros"])][: len(names)])
        body = sink.getvalue().encode("cp932")
        if state.faults.take(ssp, "truncated", day):
            body = body[: len(body) // 2]
        return Response(body, mimetype="text/csv", headers={"Content-Type": "text/csv; charset=Shift_JIS"})
