"""Monthly statements as SSPs issue them: never quite the sum of their daily reports.

The month's revenue line is the sum of its settled daily figures, rounded to
the currency's minor unit; below it come the ways real statements differ. Per
(SSP, month), ``POST /_control/statements`` picks the variant:

- ``ivt`` (the default): an invalid-traffic deduction of 0.5-3 %;
- ``late_deduction``: that, plus a deduction for the month before;
- ``fx``: paid in JPY at a payment rate 0.5-2 % off the demo rate (a non-JPY SSP);
- ``late``: issued on ``params.day`` (default 20) instead of the expected day;
- ``corrected``: an ``ivt`` statement, then on ``params.day`` (default 12) a
  corrected one naming it in ``replaces``, with ``params.ivt_pct`` (default 0.4);
- ``malformed``: ``params.defect`` = ``total`` (lines do not add up),
  ``account`` (another publisher's) or ``future`` (dated the month being served).

The API answers the newest statement issued by now (so a daily fetch sees the
same statement again and again: it arrives twice); file-drop SSPs get it in
their bucket. ``/_control/truth?statement=M`` says what each should reconcile to.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, jsonify, request

from ssp_emulator.figures import YEN_PER_UNIT, _rng, business_figures
from ssp_emulator.http import error_response
from ssp_emulator.state import EmulatorState

VARIANTS = ("ivt", "late_deduction", "fx", "late", "corrected", "malformed")
EXPECTED_DAY = 2
BUSINESS_TZ = ZoneInfo("Asia/Tokyo")
CSV_COLUMNS = ("statement_id", "account", "month", "currency", "issued_at", "replaces",
               "payment_fx_rate", "kind", "for_month", "description", "amount")
MICROS = decimal.Decimal(1_000_000)


def account(ssp: str) -> str:
    return f"pub-{ssp}-001"


def _months(month: str) -> tuple[dt.date, dt.date]:
    first = dt.date.fromisoformat(month + "-01")
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, following


def _previous(month: str) -> str:
    first, _ = _months(month)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def _minor(currency: str) -> decimal.Decimal:
    return decimal.Decimal(1) if currency == "JPY" else decimal.Decimal("0.01")


def settled_total(state: EmulatorState, ssp: str, month: str) -> decimal.Decimal:
    """The month's daily truth once every restatement has applied, in the SSP's currency.

    Plan params ``since`` / ``until`` (ISO dates) bound the days: an account opened or
    closed within the month is paid for its own days only.
    """
    profile = state.profile(ssp)
    first, following = _months(month)
    settled = dt.datetime.combine(following, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=30)
    params = dict(state.statement_plans.get((ssp, month), {}).get("params") or {})
    if params.get("since"):
        first = max(first, dt.date.fromisoformat(str(params["since"])))
    if params.get("until"):
        following = min(following, dt.date.fromisoformat(str(params["until"])) + dt.timedelta(days=1))
    micros = 0
    day = first
    while day < following:
        table = business_figures(profile, day, state.seed, settled)
        micros += sum(int(v) for v in table["revenue_micros"].to_pylist())
        day += dt.timedelta(days=1)
    return decimal.Decimal(micros) / MICROS


def _issued(month: str, day: int) -> dt.datetime:
    _, following = _months(month)
    return dt.datetime.combine(following.replace(day=day), dt.time(0), tzinfo=BUSINESS_TZ).astimezone(dt.UTC)


def _pct(ssp: str, month: str, seed: int, low: float, high: float, label: str) -> decimal.Decimal:
    value = _rng(ssp, month, seed, "statement", label).uniform(low, high)
    return decimal.Decimal(f"{value:.3f}")


def issued(state: EmulatorState, ssp: str, month: str) -> list[dict[str, Any]]:
    """Every statement of (SSP, month) the SSP will ever issue, oldest first."""
    profile = state.profile(ssp)
    plan = state.statement_plans.get((ssp, month), {"variant": "ivt"})
    variant, params = str(plan.get("variant", "ivt")), dict(plan.get("params") or {})
    currency = profile.currency
    minor = _minor(currency)
    revenue = settled_total(state, ssp, month).quantize(minor, rounding=decimal.ROUND_HALF_EVEN)
    first_pct = params.get("ivt_pct") if variant != "corrected" else params.get("first_ivt_pct")
    ivt_pct = decimal.Decimal(str(first_pct)) if first_pct is not None \
        else _pct(ssp, month, state.seed, 0.5, 3.0, "ivt")

    def lines_for(pct: decimal.Decimal) -> list[dict[str, Any]]:
        out = [{"kind": "revenue", "for_month": month, "description": f"Revenue {month}", "amount": revenue},
               {"kind": "invalid_traffic", "for_month": month, "description": f"Invalid traffic {pct}%",
                "amount": -(revenue * pct / 100).quantize(minor, rounding=decimal.ROUND_HALF_EVEN)}]
        if variant == "late_deduction":
            default = (revenue * decimal.Decimal("0.003")).quantize(minor)
            late = decimal.Decimal(str(params.get("amount", default)))
            out.append({"kind": "late_deduction", "for_month": _previous(month),
                        "description": f"Invalid traffic found late in {_previous(month)}", "amount": -late})
        return out

    def statement(number: int, day: int, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"statement_id": f"{ssp}-{month}-{number}", "account": account(ssp), "month": month,
                "currency": currency, "issued_at": _issued(month, day).isoformat(), "replaces": None,
                "payment_fx_rate": None, "lines": lines,
                "total": sum((item["amount"] for item in lines), decimal.Decimal(0)), **extra}

    expected = int(params.get("expected_day", EXPECTED_DAY))
    if variant == "late":
        return [statement(1, int(params.get("day", 20)), lines_for(ivt_pct))]
    if variant == "corrected":
        first = statement(1, expected, lines_for(ivt_pct))
        second = statement(2, int(params.get("day", 12)),
                           lines_for(decimal.Decimal(str(params.get("ivt_pct", "0.4")))),
                           replaces=first["statement_id"])
        return [first, second]
    if variant == "fx" and currency != "JPY":
        rate = (decimal.Decimal(YEN_PER_UNIT.get(currency, 150))
                * (1 + _pct(ssp, month, state.seed, 0.5, 2.0, "fx") / 100)).quantize(decimal.Decimal("0.01"))
        converted = [{**item, "amount": (item["amount"] * rate).quantize(decimal.Decimal(1),
                                                                          rounding=decimal.ROUND_HALF_EVEN)}
                     for item in lines_for(ivt_pct)]
        found = statement(1, expected, converted, payment_fx_rate=rate)
        found["currency"] = "JPY"
        return [found]
    found = statement(1, expected, lines_for(ivt_pct))
    if variant == "malformed":
        defect = str(params.get("defect", "total"))
        if defect == "total":
            found["total"] = found["total"] + minor
        elif defect == "account":
            found["account"] = "pub-someone-else-999"
        elif defect == "future":
            found["month"] = _months(month)[1].strftime("%Y-%m")
    return [found]


def current(state: EmulatorState, ssp: str, month: str) -> dict[str, Any] | None:
    standing = [s for s in issued(state, ssp, month)
                if dt.datetime.fromisoformat(s["issued_at"]) <= state.now]
    return standing[-1] if standing else None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def render(found: dict[str, Any], fmt: str) -> bytes:
    """The statement's bytes: JSON with decimal strings, or one CSV row per line plus a total row."""
    if fmt == "json":
        body = {**found, "total": str(found["total"]),
                "payment_fx_rate": _text(found["payment_fx_rate"]) or None,
                "lines": [{**item, "amount": str(item["amount"])} for item in found["lines"]]}
        return json.dumps(body, indent=2, sort_keys=True).encode()
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    head = [_text(found[c]) for c in CSV_COLUMNS[:7]]
    for item in found["lines"]:
        writer.writerow([*head, item["kind"], item["for_month"], item["description"], str(item["amount"])])
    writer.writerow([*head, "total", found["month"], "Statement total", str(found["total"])])
    return sink.getvalue().encode()


def truth(state: EmulatorState, ssp: str, month: str) -> dict[str, Any]:
    """What each statement should reconcile to: the settled daily total and the variance."""
    reported = settled_total(state, ssp, month)
    profile = state.profile(ssp)
    out = []
    for found in issued(state, ssp, month):
        rate = found["payment_fx_rate"]
        paid = found["total"] if found["currency"] == profile.currency else (
            found["total"] / rate).quantize(decimal.Decimal("0.000001"))
        out.append({"statement_id": found["statement_id"], "issued_at": found["issued_at"],
                    "replaces": found["replaces"], "currency": found["currency"],
                    "total": str(found["total"]),
                    "payment_fx_rate": _text(rate) or None, "paid": str(paid),
                    "variance": str(paid - reported),
                    "lines": [{**i, "amount": str(i["amount"])} for i in found["lines"]]})
    now = current(state, ssp, month)
    return {"ssp": ssp, "month": month, "reported": str(reported), "account": account(ssp),
            "statements": out, "in_force": now["statement_id"] if now else None}


def register(app: Flask, state: EmulatorState, ssp: str, refusal: Callable[[], Response | None]) -> None:
    """``GET /<ssp>/statements/<month>``: the newest statement issued, behind the SSP's own auth."""

    def serve(month: str) -> Response:
        denied = refusal()
        if denied is not None:
            return denied
        try:
            _months(month)
        except ValueError:
            return error_response(400, "bad_month", "month must be YYYY-MM")
        found = current(state, ssp, month)
        if found is None:
            return error_response(404, "not_issued", f"no statement for {month} yet")
        return Response(render(found, "json"), mimetype="application/json")

    app.add_url_rule(f"/{ssp}/statements/<month>", endpoint=f"{ssp}_statement", view_func=serve)


def control(app: Flask, state: EmulatorState) -> None:
    @app.route("/_control/statements", methods=["POST", "DELETE"])
    def plans() -> Response:
        if request.method == "DELETE":
            with state.lock:
                state.statement_plans.clear()
            return jsonify(ok=True)
        body = request.get_json(force=True)
        if body.get("variant") not in VARIANTS:
            return Response(f"variant must be one of {VARIANTS}", status=400)
        with state.lock:
            state.statement_plans[(str(body["ssp"]), str(body["month"]))] = {
                "variant": body["variant"], "params": body.get("params") or {}}
        return jsonify(ok=True)


    @app.get("/_control/statement_file")
    def statement_file() -> Response:
        """The statement in force as the SSP's console exports it (what an operator uploads)."""
        found = current(state, request.args["ssp"], request.args["month"])
        if found is None:
            return error_response(404, "not_issued", "no statement issued yet")
        fmt = request.args.get("format", "csv")
        return Response(render(found, fmt), mimetype="text/csv" if fmt == "csv" else "application/json")


def drop_key(ssp: str, month: str) -> str:
    return f"{ssp}/statements/{month}.csv"


def deliver(state: EmulatorState, ssp: str, put: Callable[[str, bytes], bool]) -> int:
    """A file-drop SSP puts the statements issued by now in its bucket (the newest wins the name);
    ``put`` writes a file unless it already holds those bytes."""
    delivered = 0
    today = state.now.astimezone(BUSINESS_TZ).date()
    month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    for _ in range(3):
        name = month.strftime("%Y-%m")
        found = current(state, ssp, name)
        if found is not None:
            delivered += put(drop_key(ssp, name), render(found, "csv"))
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return delivered
