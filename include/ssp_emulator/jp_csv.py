"""Japanese-SSP CSV export: a token header, Shift_JIS, JST, whole yen with thousands
separators and consumption tax included, and a totals row at the end."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pyarrow as pa
import pyarrow.compute as pc
from flask import Flask, Response, jsonify, request

from ssp_emulator import text
from ssp_emulator.state import EmulatorState, ReportNotReady

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
        names = [c for c in table.column_names if c != "currency"]
        cells = []
        for name in names:
            column = table[name]
            if name == "date":
                column = pc.replace_substring(column, "-", "/")
            elif name in ("impressions", "clicks"):
                column = text.thousands(column)
            elif name in ("revenue_micros", "revenue"):
                yen = pa.array(column.to_numpy() // 1_000_000, pa.int64())
                bad = None if bad_row is None else bad_row - 1
                column = text.with_cell(text.thousands(yen), bad, "12x45")
            cells.append(column)
        sink = io.StringIO()
        writer = csv.writer(sink, lineterminator="\r\n")
        writer.writerow([HEADERS.get(c, c) for c in names])
        sink.write(text.csv_lines(cells, "\r\n"))
        blanks = [""] * (len(names) - 4)
        writer.writerow([TOTAL_LABEL, *blanks, f"{stated['impressions']:,}", f"{stated['clicks']:,}",
                         _yen(stated["revenue_micros"])][: len(names)])
        body = sink.getvalue().encode("cp932")
        if state.faults.take(ssp, "truncated", day):
            body = body[: len(body) // 2]
        return Response(body, mimetype="text/csv", headers={"Content-Type": "text/csv; charset=Shift_JIS"})
