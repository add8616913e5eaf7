"""File-drop SSPs: daily CSVs delivered into the SSP's own S3 bucket (a cross-account
share), each followed by a manifest with the file's sha256 and totals.

A file is read only when its manifest exists and the file's sha256 matches it:
a file without one, or with another, is still being written (converging). A
re-delivered file (same name, new content) is fetched like any other: its
content hash makes a new version, the same content makes none. Days are the
SSP's own (UTC) days, booked as the business date of the same date
(tz_policy ``ssp_date``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from botocore.exceptions import BotoCoreError, ClientError

from ssp_revenue.core import schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import AuthError, DataNotReady, MalformedReport, ServerError
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest.connectors.base import (
    FetchedReport,
    ReportBody,
    StreamedConnector,
)

COLUMN_TYPES: dict[str, pa.DataType] = {
    "date": pa.date32(), "site": pa.string(), "placement": pa.string(), "country": pa.string(),
    "device": pa.string(), "impressions": pa.int64(), "clicks": pa.int64(),
    "currency": pa.string(), "revenue": pa.string(),
}


class FileDropConnector(StreamedConnector):
    style: ClassVar[str] = "file_drop"
    expected_columns: ClassVar[tuple[str, ...]] = tuple(COLUMN_TYPES)
    extension: ClassVar[str] = "csv"
    csv_columns: ClassVar[dict[str, pa.DataType]] = COLUMN_TYPES
    request_facts: ClassVar[frozenset[str]] = frozenset({"etag", "delivered_at"})

    def _s3(self) -> Any:
        import boto3

        extra = dict(self.credentials.extra)
        return boto3.client(
            "s3", endpoint_url=self.credentials.base_url or None,
            region_name=extra.get("region", "us-east-1"),
            aws_access_key_id=self.credentials.login, aws_secret_access_key=self.credentials.secret,
        )

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        extra = dict(self.credentials.extra)
        bucket = str(extra.get("bucket", "ssp-drop"))
        prefix = str(extra.get("prefix", f"{self.config.name}/daily/"))
        name = f"{prefix}{revenue_date.isoformat()}"
        where = {"ssp": self.config.name, "revenue_date": revenue_date}
        s3 = self._s3()
        try:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=name + ".manifest.json")["Body"].read())
            obj = s3.get_object(Bucket=bucket, Key=manifest["file"])
            body = obj["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                raise DataNotReady(f"no manifest for {name}: not delivered yet", **where) from None  # type: ignore[arg-type]
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
                        "NoSuchBucket"):
                raise AuthError(f"drop bucket {bucket} refused us or is not shared: {code}",
                                **where) from None  # type: ignore[arg-type]
            raise ServerError(f"drop bucket: {code}", **where) from None  # type: ignore[arg-type]
        except (BotoCoreError, ValueError, KeyError) as exc:
            raise ServerError(f"drop bucket: {exc.__class__.__name__}: {exc}", **where) from None  # type: ignore[arg-type]
        digest = hashlib.sha256(body).hexdigest()
        if digest != manifest.get("sha256"):
            raise DataNotReady(  # a delivery in progress: the manifest is written last
                f"{manifest['file']} does not match its manifest (sha256 {digest[:12]} vs "
                f"{str(manifest.get('sha256'))[:12]}): still being written", **where)  # type: ignore[arg-type]
        facts = {"style": self.style, "file": manifest["file"], "etag": obj.get("ETag", ""),
                 "sha256": digest, "rows": manifest.get("rows"), "totals": manifest.get("totals"),
                 "delivered_at": manifest.get("delivered_at")}
        return FetchedReport(self.config.name, revenue_date, ReportBody.of(body), self.extension, facts)

    def fetch_statement(self, month: Month) -> bytes | None:
        """``<ssp>/statements/<month>.csv`` in the drop bucket (extra ``statement_prefix``)."""
        extra = dict(self.credentials.extra)
        bucket = str(extra.get("bucket", "ssp-drop"))
        key = f"{extra.get('statement_prefix', f'{self.config.name}/statements/')}{month}.csv"
        where = {"ssp": self.config.name, "revenue_date": month.first}
        try:
            return bytes(self._s3().get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "NoSuchBucket"):
                raise AuthError(f"drop bucket {bucket} refused us: {code}", **where) from None  # type: ignore[arg-type]
            raise ServerError(f"drop bucket: {code}", **where) from None  # type: ignore[arg-type]
        except BotoCoreError as exc:
            raise ServerError(f"drop bucket: {exc.__class__.__name__}: {exc}", **where) from None  # type: ignore[arg-type]

    @classmethod
    def stated_totals(cls, facts: Mapping[str, Any]) -> Mapping[str, Any] | None:
        totals = facts.get("totals")
        if not totals:
            return None
        return {"rows": int(facts["rows"]), "impressions": int(totals["impressions"]),
                "clicks": int(totals["clicks"]), "revenue": decimal.Decimal(str(totals["revenue"]))}

    @staticmethod
    def canonical(config: SspConfig, raw: pa.RecordBatch, before: int) -> pa.RecordBatch:
        try:
            money = pc.cast(raw["revenue"], schema.MONEY)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for number, value in enumerate(raw["revenue"].to_pylist(), start=before + 1):
                try:
                    decimal.Decimal(value).quantize(decimal.Decimal("0.000001"), context=decimal.Context(
                        traps=[decimal.Inexact, decimal.InvalidOperation]))
                except (decimal.InvalidOperation, decimal.Inexact):
                    message = f"column 'revenue': {value!r} is not an amount"
                    raise MalformedReport(message, row=number) from None
            raise MalformedReport("column 'revenue' does not fit decimal(18,6)") from None
        n = raw.num_rows
        return pa.RecordBatch.from_pydict({
            "revenue_date": raw["date"], "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            "media": raw["site"], "ad_unit": raw["placement"], "country": raw["country"],
            "device": raw["device"], "impressions": raw["impressions"], "clicks": raw["clicks"],
            "revenue": money, "currency": raw["currency"],
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        }, schema=schema.NORMALISED)
