"""Async report-job style: OAuth2 client credentials, create, poll, download gzip CSV in parts.

Modelled on Ad Manager-style report jobs: money in micros, the report's totals
stated beside it, and a download split into byte-range parts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets

from flask import Flask, Response, jsonify, request

from ssp_emulator.http import error_response
from ssp_emulator.state import EmulatorState, Job, ReportNotReady

TOKEN_TTL = dt.timedelta(hours=1)


def bearer_refusal(state: EmulatorState, ssp: str) -> Response | None:
    """The 401 for a request without a live token of this SSP; None when it may pass."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip()
    with state.lock:
        entry = state.tokens.get(token)
    if state.faults.take(ssp, "revoked_credentials") or entry is None or entry[0] != ssp:
        return error_response(401, "invalid_token", "unknown or revoked token")
    if entry[1] <= state.now:
        return error_response(401, "token_expired", "access token expired")
    return None


def register(app: Flask, state: EmulatorState, ssp: str) -> None:
    base = f"/{ssp}"

    def authorised() -> Response | None:
        return bearer_refusal(state, ssp)

    @app.post(base + "/oauth2/token", endpoint=f"{ssp}_token")
    def token() -> Response:
        profile = state.profile(ssp)
        auth = request.authorization
        grant = request.form.get("grant_type")
        if grant != "client_credentials":
            return error_response(400, "unsupported_grant_type")
        if (
            auth is None
            or auth.username != profile.client_id
            or auth.password != profile.client_secret
            or state.faults.take(ssp, "revoked_credentials")
        ):
            return error_response(401, "invalid_client", "client authentication failed")
        value = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[value] = (ssp, state.now + TOKEN_TTL)
        return jsonify(
            access_token=value,
            token_type="Bearer",  # noqa: S106  # nosec B106 - a token type, not a secret
            expires_in=int(TOKEN_TTL.total_seconds()),
        )

    @app.post(base + "/v1/reports", endpoint=f"{ssp}_create")
    def create() -> Response:
        if denied := authorised():
            return denied
        body = request.get_json(silent=True) or {}
        try:
            day = dt.date.fromisoformat(body["date"])
        except (KeyError, TypeError, ValueError):
            return error_response(400, "invalid_request", "body needs 'date': 'YYYY-MM-DD'")
        try:
            report = state.make_report(ssp, day)
        except ReportNotReady as exc:
            return error_response(409, "DATA_NOT_READY", str(exc))
        profile = state.profile(ssp)
        job_id = state.next_id(ssp)
        state.remember_job(job_id, Job(ssp=ssp, report=report, polls_left=profile.job_polls))
        response = jsonify(id=job_id, status="RUNNING")
        response.status_code = 202
        return response

    def job_or_404(job_id: str) -> Job | None:
        with state.lock:
            job = state.jobs.get(job_id)
        return job if job is not None and job.ssp == ssp else None

    @app.get(base + "/v1/reports/<job_id>", endpoint=f"{ssp}_status")
    def status(job_id: str) -> Response:
        if denied := authorised():
            return denied
        job = job_or_404(job_id)
        if job is None:
            return error_response(404, "not_found")
        with state.lock:
            if job.polls_left > 0:
                job.polls_left -= 1
                return jsonify(id=job_id, status="RUNNING")
        report = job.report
        part_size = state.profile(ssp).part_size
        return jsonify(
            id=job_id,
            status="DONE",
            date=report.revenue_date.isoformat(),
            parts=max(1, math.ceil(len(report.body) / part_size)),
            size=len(report.body),
            sha256=hashlib.sha256(report.body).hexdigest(),
            totals=report.totals,
            format="csv.gz",
        )

    @app.get(base + "/v1/reports/<job_id>/parts/<int:part>", endpoint=f"{ssp}_part")
    def part(job_id: str, part: int) -> Response:
        if denied := authorised():
            return denied
        job = job_or_404(job_id)
        if job is None:
            return error_response(404, "not_found")
        if job.polls_left > 0:
            return error_response(409, "REPORT_NOT_READY", "poll the job until DONE")
        report = job.report
        part_size = state.profile(ssp).part_size
        chunk = report.body[part * part_size : (part + 1) * part_size]
        if state.faults.take(ssp, "truncated", report.revenue_date):
            chunk = chunk[: max(1, len(chunk) // 2)]
        return Response(chunk, mimetype="application/gzip")
