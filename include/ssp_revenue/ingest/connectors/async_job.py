"""Async report-job SSPs: OAuth2 client credentials, create -> poll -> download parts.

The hardest common style (Ad Manager-like): a token that expires, a job that
is not done when created, a body downloaded in byte-range parts that must add
up to the size and sha256 the API stated, money in micros.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa

from ssp_revenue.core import schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import AuthError, DataNotReady, FetchTimeout, MalformedReport, ServerError
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors.base import (
    FetchedReport,
    ReportBody,
    StreamedConnector,
    UnexpectedStatus,
)

COLUMN_TYPES: dict[str, pa.DataType] = {
    "date": pa.date32(),
    "site": pa.string(),
    "ad_unit_code": pa.string(),
    "country_code": pa.string(),
    "device_category": pa.string(),
    "impressions": pa.int64(),
    "clicks": pa.int64(),
    "revenue_micros": pa.int64(),
    "currency": pa.string(),
}


class AsyncJobConnector(StreamedConnector):
    style: ClassVar[str] = "async_job"
    expected_columns: ClassVar[tuple[str, ...]] = tuple(COLUMN_TYPES)
    extension: ClassVar[str] = "csv.gz"
    csv_columns: ClassVar[dict[str, pa.DataType]] = COLUMN_TYPES
    compression: ClassVar[str | None] = "gzip"
    request_facts: ClassVar[frozenset[str]] = frozenset({"report_id"})

    max_polls: int = 80
    # Polls back off from 0.25 s to 10 s: quick for small reports, gentle on the API quota.
    first_poll_interval: float = 0.25
    max_poll_interval: float = 10.0
    download_attempts: int = 3

    _token: str | None = None
    _token_expires: dt.datetime | None = None

    # -- auth --------------------------------------------------------------------

    def _bearer(self, revenue_date: dt.date) -> dict[str, str]:
        now = self.clock.now()
        if self._token is None or self._token_expires is None or now >= self._token_expires:
            response = self.request(
                "POST",
                f"{self.config.name}/oauth2/token",
                revenue_date=revenue_date,
                data={"grant_type": "client_credentials"},
                auth=(self.credentials.login, self.credentials.secret),
            )
            body = response.json()
            self._token = str(body["access_token"])
            # Refresh a minute early so a token never expires mid-report.
            lifetime = max(0, int(body.get("expires_in", 3600)) - 60)
            self._token_expires = now + dt.timedelta(seconds=lifetime)
        return {"Authorization": f"Bearer {self._token}"}

    def statement_headers(self, month: Month) -> dict[str, str]:
        return self._bearer(month.first)

    def _api(self, method: str, path: str, revenue_date: dt.date, **kwargs: Any) -> Any:
        """An authorised call; an expired token is refreshed once, a refused one is final."""
        for attempt in (1, 2):
            try:
                return self.request(
                    method, f"{self.config.name}/{path}", revenue_date=revenue_date,
                    headers=self._bearer(revenue_date), **kwargs,
                )
            except AuthError as exc:
                if attempt == 1 and "token_expired" in exc.message:
                    self._token = None
                    continue
                raise
        raise AssertionError("unreachable")

    # -- fetch -------------------------------------------------------------------

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        try:
            created = self._api(
                "POST", "v1/reports", revenue_date, ok=(200, 202),
                json={"date": revenue_date.isoformat(), "format": "csv.gz"},
            ).json()
        except UnexpectedStatus as exc:
            if exc.status == 409 and exc.code == "DATA_NOT_READY":
                raise DataNotReady(
                    "report not available yet", ssp=self.config.name, revenue_date=revenue_date
                ) from None
            raise
        job_id = str(created["id"])
        status = self._poll(job_id, revenue_date)
        for attempt in range(1, self.download_attempts + 1):
            body = ReportBody()  # part by part to a spool file: one part in memory at a time
            for part in range(int(status["parts"])):
                body.write(self._api("GET", f"v1/reports/{job_id}/parts/{part}", revenue_date).content)
            digest = body.sha256
            if body.size == int(status["size"]) and digest == status["sha256"]:
                break
            if attempt == self.download_attempts:
                raise ServerError(
                    f"report {job_id}: downloaded {body.size} bytes (sha256 {digest[:12]}), "
                    f"API stated {status['size']} bytes (sha256 {str(status['sha256'])[:12]})",
                    ssp=self.config.name, revenue_date=revenue_date,
                )
        facts = {
            "report_id": job_id,
            "style": self.style,
            "totals": status.get("totals"),
            "size": status["size"],
            "sha256": status["sha256"],
        }
        return FetchedReport(self.config.name, revenue_date, body, self.extension, facts)

    def _poll(self, job_id: str, revenue_date: dt.date) -> Mapping[str, Any]:
        for poll in range(self.max_polls):
            status: Mapping[str, Any] = self._api(
                "GET", f"v1/reports/{job_id}", revenue_date
            ).json()
            state = status.get("status")
            if state == "DONE":
                return status
            if state == "FAILED":
                raise ServerError(f"report job {job_id} failed: {status.get('error')}",
                                  ssp=self.config.name, revenue_date=revenue_date)
            self.clock.wait(min(self.max_poll_interval, self.first_poll_interval * 2**poll))
        raise FetchTimeout(
            f"report job {job_id} not done after {self.max_polls} polls",
            ssp=self.config.name, revenue_date=revenue_date,
        )

    # -- parse -------------------------------------------------------------------

    @classmethod
    def stated_totals(cls, facts: Mapping[str, Any]) -> Mapping[str, Any] | None:
        stated = facts.get("totals")
        if not stated:
            return None
        try:
            return {
                "rows": int(stated["rows"]),
                "impressions": int(stated["impressions"]),
                "clicks": int(stated["clicks"]),
                "revenue": decimal.Decimal(int(stated["revenue_micros"])).scaleb(-6),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedReport(f"report totals unreadable: {exc}") from None

    @staticmethod
    def canonical(config: SspConfig, raw: pa.RecordBatch, before: int) -> pa.RecordBatch:
        n = raw.num_rows
        return pa.RecordBatch.from_pydict(
            {
                "revenue_date": raw["date"],
                "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
                "media": raw["site"],
                "ad_unit": raw["ad_unit_code"],
                "country": raw["country_code"],
                "device": raw["device_category"],
                "impressions": raw["impressions"],
                "clicks": raw["clicks"],
                "revenue": normalise.micros_to_money(raw["revenue_micros"]),
                "currency": raw["currency"],
                "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
            },
            schema=schema.NORMALISED,
        )
