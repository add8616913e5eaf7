"""File-drop style: the SSP delivers a daily CSV into an S3 bucket of its own (as a
cross-account share would), then a manifest naming the file, its sha256 and totals.
Restatements are re-delivered under the same name with new content."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
from flask import Flask, Response, jsonify

from ssp_emulator import statements
from ssp_emulator.http import decimal_text
from ssp_emulator.state import EmulatorState, ReportNotReady

DROP_BUCKET = "ssp-drop"
DELIVERY_DAYS = 12  # how far back the SSP keeps re-delivering restated days


def data_key(ssp: str, day: dt.date) -> str:
    return f"{ssp}/daily/{day.isoformat()}.csv"


def manifest_key(ssp: str, day: dt.date) -> str:
    return f"{ssp}/daily/{day.isoformat()}.manifest.json"


def _client(state: EmulatorState) -> Any:
    """The drop bucket's client, built (and the bucket made) once per emulated world."""
    if state.drop_client is None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=state.s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106  # nosec B106
        try:
            s3.create_bucket(Bucket=DROP_BUCKET)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass
        state.drop_client = s3
    return state.drop_client


def put_changed(state: EmulatorState, s3: Any, key: str, body: bytes) -> bool:
    """Put ``body`` at ``key`` unless this world already put the same bytes there."""
    digest = hashlib.sha256(body).hexdigest()
    if state.dropped.get(key) == digest:
        return False
    s3.put_object(Bucket=DROP_BUCKET, Key=key, Body=body)
    state.dropped[key] = digest
    return True


def _render(table: pa.Table, bad_row: int | None) -> bytes:
    out = table.select([c for c in table.column_names if c not in ("revenue_micros", "revenue")])
    money_column = "revenue_micros" if "revenue_micros" in table.column_names else "revenue"
    amounts = [decimal_text(v) for v in table[money_column].to_pylist()]
    if bad_row is not None and 0 < bad_row <= len(amounts):
        amounts[bad_row - 1] = "12x45"
    out = out.append_column("revenue" if money_column == "revenue_micros" else "revenue_eur_micros",
                            pa.array(amounts, pa.string()))
    sink = io.BytesIO()
    pacsv.write_csv(out.rename_columns([
        {"ad_unit_code": "placement", "country_code": "country", "device_category": "device"}.get(c, c)
        for c in out.column_names]), sink, pacsv.WriteOptions(quoting_style="none"))
    return sink.getvalue()


def deliver(state: EmulatorState, ssp: str, day: dt.date, s3: Any) -> bool:
    """(Re)deliver one day if its content changed; the manifest goes last."""
    try:
        table, stated, bad_row = state.served_table(ssp, day)
    except ReportNotReady:
        return False
    body = _render(table, bad_row)
    digest = hashlib.sha256(body).hexdigest()
    if state.dropped.get(manifest_key(ssp, day)) == digest:
        return False  # delivered by this process: the bucket holds it
    try:
        current = json.loads(s3.get_object(Bucket=DROP_BUCKET, Key=manifest_key(ssp, day))["Body"].read())
        if current.get("sha256") == digest:
            state.dropped[manifest_key(ssp, day)] = digest
            return False
    except s3.exceptions.NoSuchKey:
        pass
    s3.put_object(Bucket=DROP_BUCKET, Key=data_key(ssp, day), Body=body)
    if state.faults.take(ssp, "still_writing", day):
        return True  # the data file is (re)written, its manifest not yet
    manifest = {
        "file": data_key(ssp, day), "sha256": digest, "bytes": len(body),
        "rows": stated["rows"],
        "totals": {"impressions": stated["impressions"], "clicks": stated["clicks"],
                   "revenue": decimal_text(stated["revenue_micros"])},
        "delivered_at": state.now.isoformat(),
    }
    s3.put_object(Bucket=DROP_BUCKET, Key=manifest_key(ssp, day),
                  Body=json.dumps(manifest, sort_keys=True).encode())
    state.dropped[manifest_key(ssp, day)] = digest  # the manifest of this data file
    return True


def deliver_all(state: EmulatorState) -> int:
    """Every file-drop SSP delivers what is due at the current simulated time."""
    drops = [p for p in state.profiles.values() if p.style == "file_drop"]
    if not drops or not state.s3_endpoint:
        return 0
    s3 = _client(state)
    delivered = 0
    today = state.now.date()
    for profile in drops:
        for back in range(DELIVERY_DAYS, -1, -1):
            delivered += deliver(state, profile.name, today - dt.timedelta(days=back), s3)
        delivered += statements.deliver(
            state, profile.name, lambda key, body: put_changed(state, s3, key, body))
    return delivered


def clear(state: EmulatorState) -> None:
    """Take back every delivered file (a reset of the emulated world)."""
    if not state.s3_endpoint:
        return
    state.dropped.clear()
    s3 = _client(state)
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DROP_BUCKET):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=DROP_BUCKET, Key=obj["Key"])
    except s3.exceptions.NoSuchBucket:
        pass


def register(app: Flask, state: EmulatorState, ssp: str) -> None:
    @app.post(f"/_control/deliver/{ssp}", endpoint=f"{ssp}_deliver")
    def deliver_now() -> Response:
        return jsonify(delivered=deliver_all(state), bucket=DROP_BUCKET)
