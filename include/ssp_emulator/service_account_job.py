"""Service-account report jobs (Ad Manager-like): a JWT signed with the service
account's private key is exchanged for a token; a report job runs; its result is a
signed, expiring download URL for a gzip CSV of hourly rows in the network's zone."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import io
import secrets
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request

from ssp_emulator.figures import hourly_between
from ssp_emulator.http import error_response
from ssp_emulator.state import GZIP_LEVEL, EmulatorState, Job, Report, corrupt_csv_row
from ssp_emulator.text import each_distinct

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
URL_TTL = dt.timedelta(minutes=15)
TOKEN_TTL = dt.timedelta(hours=1)


class ServiceAccount:
    """The emulated network's service account: a fresh RSA key per emulator process."""

    def __init__(self, email: str) -> None:
        self.email = email
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.public_key = key.public_key()
        self.url_secret = secrets.token_bytes(32)


def _sign(account: ServiceAccount, path: str, expires: int) -> str:
    return hmac.new(account.url_secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()


def register(app: Flask, state: EmulatorState, ssp: str) -> None:
    profile = state.profile(ssp)
    account = ServiceAccount(profile.client_id)
    state.service_accounts[ssp] = account
    base = f"/{ssp}"

    @app.get(f"/_control/service-account/{ssp}", endpoint=f"{ssp}_service_account")
    def service_account() -> Response:
        """The demo key file, as a network admin would download it (loopback only)."""
        return jsonify(client_email=account.email, private_key=account.private_pem)

    @app.post(base + "/oauth2/token", endpoint=f"{ssp}_sa_token")
    def token() -> Response:
        if request.form.get("grant_type") != GRANT:
            return error_response(400, "unsupported_grant_type")
        try:
            claims = jwt.decode(
                request.form.get("assertion", ""), account.public_key, algorithms=["RS256"],
                audience=request.url_root.rstrip("/") + base + "/oauth2/token",
                options={"verify_exp": False, "verify_iat": False, "require": ["iss", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            return error_response(401, "invalid_grant", f"bad assertion: {exc}")
        now = state.now.timestamp()
        if (claims["iss"] != account.email or claims["exp"] <= now or claims["iat"] > now + 300
                or claims["exp"] - claims["iat"] > 3600 or state.faults.take(ssp, "revoked_credentials")):
            return error_response(401, "invalid_grant", "assertion expired, too long-lived or revoked")
        value = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[value] = (ssp, state.now + TOKEN_TTL)
        return jsonify(access_token=value, token_type="Bearer",  # noqa: S106  # nosec B106
                       expires_in=int(TOKEN_TTL.total_seconds()))

    def authorised() -> Response | None:
        value = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with state.lock:
            entry = state.tokens.get(value)
        if entry is None or entry[0] != ssp:
            return error_response(401, "invalid_token")
        if entry[1] <= state.now:
            return error_response(401, "token_expired")
        return None

    @app.post(base + "/v1/networks/<network>/reports:run", endpoint=f"{ssp}_run")
    def run(network: str) -> Response:
        if denied := authorised():
            return denied
        body: dict[str, Any] = request.get_json(silent=True) or {}
        try:
            first = dt.date.fromisoformat(body["date_range"]["start"])
            last = dt.date.fromisoformat(body["date_range"]["end"])  # inclusive, network dates
        except (KeyError, TypeError, ValueError):
            return error_response(400, "invalid_request", "date_range.start/end (network dates) required")
        zone = ZoneInfo(profile.timezone)
        start = dt.datetime.combine(first, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        closed = state.now - dt.timedelta(hours=profile.available_after_hours)
        hourly = hourly_between(profile, start, min(end, closed.replace(minute=0, second=0, microsecond=0)),
                                state.seed, state.now)
        if hourly.num_rows == 0 or state.faults.take(ssp, "not_ready", last):
            return error_response(409, "DATA_NOT_READY", "no closed hours in that range yet")
        business_date = last  # the connector asks for [D-1, D] to cover business date D
        table, stated, bad_row = state.with_content_faults(ssp, business_date, hourly)
        local = pc.local_timestamp(table["hour_start"].cast(pa.timestamp("us", tz=profile.timezone)))
        offsets = each_distinct(table["hour_start"], lambda hours: pa.array(
            [h.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S%z") for h in hours.to_pylist()], pa.string()))
        out = table.drop_columns(["date", "hour_start"])
        out = out.add_column(0, "hour_start", offsets)
        out = out.add_column(0, "date", each_distinct(local, lambda d: pc.strftime(d, format="%Y-%m-%d")))
        sink = io.BytesIO()
        pacsv.write_csv(out, sink, pacsv.WriteOptions(quoting_style="none"))
        text = corrupt_csv_row(sink.getvalue(), bad_row, column=-1)
        packed = gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0)
        report = Report(ssp, business_date, packed, stated, state.now)
        job_id = state.next_id(ssp)
        state.remember_job(job_id, Job(ssp=ssp, report=report, polls_left=profile.job_polls))
        return jsonify(name=f"operations/{job_id}", network=network)

    @app.get(base + "/v1/operations/<job_id>", endpoint=f"{ssp}_operation")
    def operation(job_id: str) -> Response:
        if denied := authorised():
            return denied
        with state.lock:
            job = state.jobs.get(job_id)
            if job is None or job.ssp != ssp:
                return error_response(404, "not_found")
            if job.polls_left > 0:
                job.polls_left -= 1
                return jsonify(name=f"operations/{job_id}", done=False)
        expires = int((state.now + URL_TTL).timestamp())
        path = f"{base}/download/{job_id}"
        signature = _sign(account, path, expires)
        url = f"{request.url_root.rstrip('/')}{path}?expires={expires}&signature={signature}"
        return jsonify(name=f"operations/{job_id}", done=True, response={
            "download_url": url, "totals": job.report.totals, "format": "CSV_GZIP",
            "sha256": hashlib.sha256(job.report.body).hexdigest(), "bytes": len(job.report.body)})

    @app.get(base + "/download/<job_id>", endpoint=f"{ssp}_download")
    def download(job_id: str) -> Response:
        expires = int(request.args.get("expires", "0"))
        signature = request.args.get("signature", "")
        path = f"{base}/download/{job_id}"
        if not hmac.compare_digest(signature, _sign(account, path, expires)):
            return error_response(403, "bad_signature")
        if expires < state.now.timestamp():
            return error_response(403, "url_expired")
        with state.lock:
            job = state.jobs.get(job_id)
        if job is None:
            return error_response(404, "not_found")
        body = job.report.body
        if state.faults.take(ssp, "truncated", job.report.revenue_date):
            body = body[: len(body) // 2]
        return Response(body, mimetype="application/gzip")

