"""The emulator's HTTP surface: ``/_control/...`` plus one route family per SSP style."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from typing import Any

from flask import Flask, Response, jsonify, request

from ssp_emulator import async_job, file_drop, service_account_job, statements
from ssp_emulator.declarative import refusal, register_described
from ssp_emulator.faults import Fault
from ssp_emulator.figures import totals
from ssp_emulator.state import EmulatorState
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.styles import load_style

STYLE_ROUTES = {
    "async_job": async_job.register,
    "file_drop": file_drop.register,
    "service_account_job": service_account_job.register,
}


def create_app(state: EmulatorState | None = None) -> Flask:
    state = state or EmulatorState()
    app = Flask("ssp_revenue_emulator")
    app.config["STATE"] = state

    @app.get("/_control/health")
    def health() -> Response:
        return jsonify(ok=True, ssps=sorted(state.profiles))

    @app.route("/_control/clock", methods=["GET", "POST"])
    def clock() -> Response:
        if request.method == "POST":
            body = request.get_json(force=True)
            with state.lock:
                state.now = parse_instant(body["now"])
            file_drop.deliver_all(state)  # drops happen as time passes
        return jsonify(now=state.now.isoformat())

    @app.post("/_control/seed")
    def seed() -> Response:
        with state.lock:
            state.seed = int(request.get_json(force=True)["seed"])
        return jsonify(seed=state.seed)

    @app.post("/_control/profile")
    def profile() -> Response:
        """Change an SSP's behaviour (grain, availability, restatements, credentials)."""
        body: dict[str, Any] = request.get_json(force=True)
        name = body.pop("ssp")
        with state.lock:
            current = state.profile(name)
            if "restatement_hours" in body:
                body["restatement_hours"] = tuple(body["restatement_hours"])
            state.profiles[name] = dataclasses.replace(current, **body)
        return jsonify(ok=True)

    @app.route("/_control/faults", methods=["GET", "POST", "DELETE"])
    def faults() -> Response:
        if request.method == "POST":
            body = request.get_json(force=True)
            day = body.get("date")
            try:
                state.add_fault(
                    Fault(
                        ssp=body["ssp"],
                        kind=body["fault"],
                        revenue_date=dt.date.fromisoformat(day) if day else None,
                        times=body.get("times"),
                        params=body.get("params") or {},
                    )
                )
            except ValueError as exc:
                return Response(str(exc), status=400)
        elif request.method == "DELETE":
            state.faults.clear(request.args.get("ssp"))
        return jsonify(faults=state.faults.listing())

    @app.post("/_control/reset")
    def reset() -> Response:
        with state.lock:
            fresh = EmulatorState(seed=state.seed, now=state.now, s3_endpoint=state.s3_endpoint)
            state.profiles = fresh.profiles
            state.faults.clear()
            state.jobs.clear()
            state.tokens.clear()
            state.statement_plans.clear()
        file_drop.clear(state)
        return jsonify(ok=True)

    @app.get("/_control/credentials/<ssp>")
    def credentials(ssp: str) -> Response:
        """An SSP's demo account, shaped like the Connection an operator fills in."""
        if ssp not in state.profiles:
            return Response(f"no emulated ssp {ssp!r}", status=404)
        emulated = state.profile(ssp)
        root = request.url_root.rstrip("/")
        if emulated.style == "service_account_job":
            account = state.service_accounts[ssp]
            return jsonify(base_url=root, login=account.email, secret=account.private_pem,
                           extra={"network_code": "21700000"})
        if emulated.style == "file_drop":
            return jsonify(base_url=state.s3_endpoint or "", login=emulated.client_id,
                           secret=emulated.client_secret,
                           extra={"bucket": file_drop.DROP_BUCKET, "prefix": f"{ssp}/daily/"})
        return jsonify(base_url=root, login=emulated.client_id, secret=emulated.client_secret, extra={})

    @app.get("/_control/truth")
    def truth() -> Response:
        """The exact figures the emulator serves for (ssp, date) at a clock time; or, with
        ``statement=YYYY-MM``, what each of that month's statements should reconcile to."""
        ssp = request.args["ssp"]
        if "statement" in request.args:
            return jsonify(statements.truth(state, ssp, request.args["statement"]))
        day = dt.date.fromisoformat(request.args["date"])
        at = parse_instant(request.args["at"]) if "at" in request.args else None
        table = state.truth(ssp, day, at)
        out: dict[str, Any] = {"ssp": ssp, "date": day.isoformat(), "totals": totals(table)}
        if request.args.get("rows") == "1":
            out["rows"] = table.to_pylist()
        return jsonify(out)

    @app.before_request
    def request_faults() -> Response | None:
        """Faults on the exchange itself: 429, 5xx, slow answers."""
        parts = request.path.strip("/").split("/")
        if not parts or parts[0].startswith("_control") or parts[0] not in state.profiles:
            return None
        ssp = parts[0]
        if fault := state.faults.take(ssp, "rate_limit"):
            retry_after = str(fault.params.get("retry_after", 1))
            return Response(
                '{"error": "rate_limited"}', status=429, headers={"Retry-After": retry_after},
                mimetype="application/json",
            )
        if fault := state.faults.take(ssp, "server_error"):
            return Response('{"error": "internal"}', status=int(fault.params.get("status", 503)),
                            mimetype="application/json")
        if fault := state.faults.take(ssp, "timeout"):
            time.sleep(float(fault.params.get("seconds", 3)))
        return None

    statements.control(app, state)
    for name, emulated in state.profiles.items():
        register = STYLE_ROUTES.get(emulated.style)
        if register is not None:
            register(app, state, name)
            if emulated.style == "async_job":
                statements.register(app, state, name,
                                    functools.partial(async_job.bearer_refusal, state, name))
            continue
        described = load_style(emulated.style)  # a style described in YAML: served from its description
        if described is None:
            raise ValueError(f"emulated ssp {name!r} has unknown style {emulated.style!r}")
        register_described(app, state, name, described)
        statements.register(app, state, name, functools.partial(refusal, state, name, described))
    return app
