"""Service-account report jobs (Ad Manager-like): JWT bearer token, report job, signed URL.

The network reports in its own zone (America/Los_Angeles here, with daylight
saving), by hour. A business date D (Asia/Tokyo) spans network dates D-1 and D,
so the job asks for both; rows carry their hour as an ISO instant with its UTC
offset, so the repeated hour of a fall-back day is unambiguous. Rows are
re-bucketed into business dates by their UTC instant (tz_policy
``hourly_rebucketed``); the whole report must add up to the job's stated totals,
and the business date must have all of its 24 hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import jwt
import pyarrow as pa
import pyarrow.compute as pc

from ssp_revenue.core import calendar
from ssp_revenue.core.errors import (
    AuthError,
    DataNotReady,
    FetchTimeout,
    MalformedReport,
    PipelineError,
    Reason,
    ServerError,
)
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest import normalise
from ssp_revenue.ingest.connectors.base import (
    FetchedReport,
    ParsedReport,
    ReportBody,
    ReportConnector,
    UnexpectedStatus,
)

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
COLUMN_TYPES: dict[str, pa.DataType] = {
    "date": pa.string(), "hour_start": pa.string(), "site": pa.string(),
    "ad_unit_code": pa.string(),
    "country_code": pa.string(), "device_category": pa.string(), "currency": pa.string(),
    "impressions": pa.int64(), "clicks": pa.int64(), "revenue_micros": pa.int64(),
}


class ServiceAccountJobConnector(ReportConnector):
    style: ClassVar[str] = "service_account_job"
    expected_columns: ClassVar[tuple[str, ...]] = tuple(COLUMN_TYPES)
    extension: ClassVar[str] = "csv.gz"
    request_facts: ClassVar[frozenset[str]] = frozenset({"operation"})
    max_polls: int = 60
    _token: str | None = None
    _token_expires: dt.datetime | None = None

    def _bearer(self, revenue_date: dt.date) -> dict[str, str]:
        now = self.clock.now()
        if self._token and self._token_expires and now < self._token_expires:
            return {"Authorization": f"Bearer {self._token}"}
        audience = self.url(f"{self.config.name}/oauth2/token")
        issued = int(now.timestamp())
        try:
            assertion = jwt.encode(
                {"iss": self.credentials.login, "aud": audience, "iat": issued, "exp": issued + 3600,
                 "scope": "reports.readonly"},
                self.credentials.secret, algorithm="RS256",
            )
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"service-account key unusable: {exc.__class__.__name__}",
                            ssp=self.config.name, revenue_date=revenue_date) from None
        body = self.request("POST", f"{self.config.name}/oauth2/token", revenue_date=revenue_date,
                            data={"grant_type": GRANT, "assertion": assertion}).json()
        self._token = str(body["access_token"])
        self._token_expires = now + dt.timedelta(seconds=max(0, int(body.get("expires_in", 3600)) - 60))
        return {"Authorization": f"Bearer {self._token}"}

    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        network = dict(self.credentials.extra).get("network_code") or self.config.options.get("network_code")
        if not network:
            raise PipelineError("no network_code: set it in the Connection's extra or the entry's options",
                                reason=Reason.MISSING_CONNECTION, ssp=self.config.name,
                                revenue_date=revenue_date)
        headers = self._bearer(revenue_date)
        try:
            created = self.request(
                "POST", f"{self.config.name}/v1/networks/{network}/reports:run",
                revenue_date=revenue_date, headers=headers,
                json={"date_range": {"start": (revenue_date - dt.timedelta(days=1)).isoformat(),
                                     "end": revenue_date.isoformat()}, "dimensions": ["HOUR"]},
            ).json()
        except UnexpectedStatus as exc:
            if exc.status == 409:
                raise DataNotReady("no closed hours yet", ssp=self.config.name,
                                   revenue_date=revenue_date) from None
            raise
        name = str(created["name"])
        for poll in range(self.max_polls):
            operation = self.request("GET", f"{self.config.name}/v1/{name}",
                                     revenue_date=revenue_date, headers=headers).json()
            if operation.get("done"):
                break
            self.clock.wait(min(10.0, 0.25 * 2**poll))
        else:
            raise FetchTimeout(f"{name} not done after {self.max_polls} polls",
                               ssp=self.config.name, revenue_date=revenue_date)
        result = operation["response"]
        download = self.session.get(result["download_url"], timeout=self.timeout)
        if download.status_code != 200:
            raise ServerError(f"download {download.status_code}: {download.text[:120]}",
                              ssp=self.config.name, revenue_date=revenue_date)
        body = download.content
        if len(body) != int(result["bytes"]):
            raise ServerError(f"downloaded {len(body)} bytes, the job states {result['bytes']}",
                              ssp=self.config.name, revenue_date=revenue_date)
        window = self._hours_in(body, revenue_date)
        if window != 24:
            raise DataNotReady(f"{window} of the business date's 24 hours are closed",
                               ssp=self.config.name, revenue_date=revenue_date)
        facts = {"style": self.style, "operation": name, "totals": result.get("totals"),
                 "business_tz": self.business_tz}
        return FetchedReport(self.config.name, revenue_date, ReportBody.of(body), self.extension, facts)

    def _hours_in(self, body: bytes, revenue_date: dt.date) -> int:
        tz = ZoneInfo(self.business_tz)
        start = calendar.date_start(revenue_date, tz)
        end = calendar.date_start(revenue_date + dt.timedelta(days=1), tz)
        text = normalise.decompress(body).decode("utf-8", "replace").splitlines()[1:]
        # A day's rows carry a few dozen distinct hours: each is parsed once.
        cells = {line.split(",", 2)[1] for line in text if line.count(",") >= 2}
        hours = set()
        for cell in cells:
            try:
                instant = dt.datetime.strptime(cell, "%Y-%m-%dT%H:%M:%S%z")
            except ValueError:
                continue
            if start <= instant < end:
                hours.add(instant)
        return len(hours)

    @classmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        raw = normalise.read_report_csv(normalise.decompress(body), COLUMN_TYPES)
        stated = facts.get("totals")
        if stated:
            for name, column in (("rows", None), ("impressions", "impressions"), ("clicks", "clicks"),
                                 ("revenue_micros", "revenue_micros")):
                got = raw.num_rows if column is None else int(pc.sum(raw[column]).as_py() or 0)
                if got != int(stated[name]):
                    raise MalformedReport(f"report {name} add up to {got}, the job states {stated[name]}")
        try:
            instants = pc.strptime(raw["hour_start"], format="%Y-%m-%dT%H:%M:%S%z", unit="us")
        except pa.ArrowInvalid:
            for number, value in enumerate(raw["hour_start"].to_pylist(), start=1):
                try:
                    dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
                except ValueError:
                    raise MalformedReport(f"hour_start {value!r} is not an ISO instant with offset",
                                          row=number) from None
            raise
        tz = str(facts.get("business_tz", "Asia/Tokyo"))
        business = pc.cast(pc.local_timestamp(instants.cast(pa.timestamp("us", tz=tz))), pa.date32())
        keep = pc.equal(business, pa.scalar(revenue_date, pa.date32()))
        rows = raw.filter(keep)
        grouped = pa.table({
            "media": rows["site"], "ad_unit": rows["ad_unit_code"], "country": rows["country_code"],
            "device": rows["device_category"], "currency": rows["currency"],
            "impressions": rows["impressions"], "clicks": rows["clicks"],
            "revenue_micros": rows["revenue_micros"],
        }).group_by(["media", "ad_unit", "country", "device", "currency"]).aggregate(
            [("impressions", "sum"), ("clicks", "sum"), ("revenue_micros", "sum")])
        n = grouped.num_rows
        table = pa.table({
            "revenue_date": pa.repeat(pa.scalar(revenue_date, pa.date32()), n),
            "ssp": pa.repeat(pa.scalar(config.name, pa.string()), n),
            "media": grouped["media"], "ad_unit": grouped["ad_unit"], "country": grouped["country"],
            "device": grouped["device"], "impressions": grouped["impressions_sum"],
            "clicks": grouped["clicks_sum"],
            "revenue": normalise.micros_to_money(grouped["revenue_micros_sum"].combine_chunks()),
            "currency": grouped["currency"],
            "tz_policy": pa.repeat(pa.scalar(config.tz_policy, pa.string()), n),
        })
        return ParsedReport(normalise.conform(table), None)

