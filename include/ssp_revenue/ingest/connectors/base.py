"""What every SSP connector shares: credentials, the fetched report, HTTP with retries.

A connector owns one report API: it fetches a report's bytes (``fetch``) and
knows how to read them (``parse``). Parsing is separate from fetching so that
a raw object landed months ago can be read again without credentials.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import os
import random
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, ClassVar

import pyarrow as pa
import requests
import tenacity

from ssp_revenue.core import schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.clock import Clock
from ssp_revenue.core.errors import (
    AuthError,
    FetchTimeout,
    MalformedReport,
    PipelineError,
    RateLimited,
    ServerError,
)
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.ingest import normalise

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """An SSP account: where its API is and how to sign in. Never logged."""

    base_url: str
    login: str
    secret: str = dataclasses.field(repr=False)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)


class ReportBody:
    """A fetched body exactly as served: in memory, or for a large report written to a
    temporary file as it downloads (hashed on the way), so a day's report is never
    held whole."""

    def __init__(self) -> None:
        self._chunks: list[bytes] | None = []
        self._path: str | None = None
        self._file: BinaryIO | None = None
        self._sha256 = hashlib.sha256()
        self.size = 0

    @classmethod
    def of(cls, data: bytes) -> ReportBody:
        body = cls()
        body.write(data)
        return body

    def write(self, chunk: bytes) -> None:
        self._sha256.update(chunk)
        self.size += len(chunk)
        if self._chunks is not None and self.size <= SPOOL_BYTES:
            self._chunks.append(chunk)
            return
        if self._file is None:  # past the limit: everything so far, and the rest, to disk
            handle, self._path = tempfile.mkstemp(prefix="ssp-revenue-body-")
            self._file = os.fdopen(handle, "wb")
            weakref.finalize(self, os.unlink, self._path)
            for held in self._chunks or []:
                self._file.write(held)
            self._chunks = None
        self._file.write(chunk)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def path(self) -> str | None:
        """The file holding the body, if it outgrew memory."""
        if self._file is not None:
            self._file.flush()
        return self._path

    def open(self) -> BinaryIO:
        """A reader from the first byte (each call its own)."""
        path = self.path
        if path is not None:
            return open(path, "rb")
        return io.BytesIO(b"".join(self._chunks or []))

    def read(self) -> bytes:
        with self.open() as reader:
            return reader.read()


SPOOL_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class FetchedReport:
    """A report's bytes exactly as served, and what the API said about it."""

    ssp: str
    revenue_date: dt.date
    body: ReportBody
    extension: str
    # Report-level facts from the API (job id, stated totals): landed beside the body.
    facts: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class ParsedReport:
    """Rows in the canonical content schema, in report order (row N is the file's
    data row N), plus the totals the SSP stated, if any."""

    table: pa.Table
    stated_totals: Mapping[str, Any] | None


# Opens a landed body from its first byte; called again to read it a second time.
BodyOpener = Callable[[], BinaryIO]


def opener(body: bytes) -> BodyOpener:
    """A body already in memory, as a :data:`BodyOpener`."""
    return lambda: io.BytesIO(body)


@dataclasses.dataclass(frozen=True)
class ReportBatches:
    """A report read one record batch at a time, in report order (the batches are
    the canonical content schema; their row numbers continue across batches)."""

    batches: Iterator[pa.RecordBatch]
    stated_totals: Mapping[str, Any] | None

    @classmethod
    def of(cls, parsed: ParsedReport) -> ReportBatches:
        return cls(iter(parsed.table.to_batches()), parsed.stated_totals)

    def read_all(self) -> ParsedReport:
        return ParsedReport(pa.Table.from_batches(list(self.batches), schema.NORMALISED),
                            self.stated_totals)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter that honours Retry-After; sleep is injectable."""

    attempts: int = 6
    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.maximum, retry_after)
        backoff = min(self.maximum, self.initial * float(2 ** (attempt - 1)))
        return backoff + random.uniform(0, self.jitter)


RETRYABLE = (RateLimited, ServerError, FetchTimeout)


class ReportConnector(abc.ABC):
    """One SSP report API. Subclasses set ``style`` and ``expected_columns``."""

    style: ClassVar[str]
    expected_columns: ClassVar[tuple[str, ...]]
    extension: ClassVar[str]
    # Facts that name the request, not the report (a job id): two fetches that differ
    # only in these are the same report.
    request_facts: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def report_identity(cls, sha256: str, facts: Mapping[str, Any]) -> str:
        """What parse and validate depend on: the body and the facts about its content.

        Equal identities parse to the same rows and pass or fail the same checks,
        so a fetch whose identity is the live version's reuses its validation.
        """
        content = {k: v for k, v in facts.items() if k not in cls.request_facts}
        stated = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
        return f"{sha256}:{stated[:16]}"

    def __init__(
        self,
        config: SspConfig,
        credentials: Credentials,
        *,
        clock: Clock,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        business_tz: str,
    ) -> None:
        self.business_tz = business_tz
        self.config = config
        self.credentials = credentials
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.timeout = timeout

    @abc.abstractmethod
    def fetch(self, revenue_date: dt.date) -> FetchedReport:
        """Fetch the report for one revenue date, retrying what heals by itself."""

    @classmethod
    @abc.abstractmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        """Read a landed report into canonical rows; errors name the row."""

    @classmethod
    def read_batches(
        cls, config: SspConfig, open_body: BodyOpener, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ReportBatches:
        """:meth:`parse`, one record batch at a time, so a day of any size is read in
        the memory of one batch. This default reads the body whole (formats that
        aggregate the day, or that are small); styles with large reports stream."""
        with open_body() as body:
            return ReportBatches.of(cls.parse(config, body.read(), facts, revenue_date))

    # -- monthly statements ---------------------------------------------------------

    def statement_headers(self, month: Month) -> dict[str, str]:
        """How this API authorises a statement request; a style without a statement API says so."""
        raise NotImplementedError(f"the {self.style} style serves no statement API: declare the "
                                  f"statement's source as file_drop or upload in ssps.yaml")

    def fetch_statement(self, month: Month) -> bytes | None:
        """The newest statement the SSP has issued for ``month``; None while it has issued none."""
        response = self.request("GET", f"{self.config.name}/statements/{month}", revenue_date=month.first,
                                ok=(200, 404), headers=self.statement_headers(month))
        return None if response.status_code == 404 else bytes(response.content)

    # -- HTTP ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.credentials.base_url.rstrip("/") + "/" + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        revenue_date: dt.date | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP call with retries on 429/5xx/timeouts; errors carry the SSP and date."""

        def attempt() -> requests.Response:
            return self._request_once(method, path, ok=ok, **kwargs)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RETRYABLE),
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            sleep=self.retry.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        try:
            return retrying(attempt)
        except PipelineError as exc:
            raise exc.located(ssp=self.config.name, revenue_date=revenue_date) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        return self.retry.wait(state.attempt_number, retry_after)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s: retrying after %s (attempt %d)", self.config.name, exc, state.attempt_number)

    def _request_once(
        self, method: str, path: str, *, ok: tuple[int, ...], **kwargs: Any
    ) -> requests.Response:
        try:
            response = self.session.request(
                method, self.url(path), timeout=kwargs.pop("timeout", self.timeout), **kwargs
            )
        except requests.Timeout as exc:
            raise FetchTimeout(f"{method} {path} timed out: {exc.__class__.__name__}") from None
        except requests.ConnectionError as exc:
            raise ServerError(f"{method} {path}: connection failed: {exc.__class__.__name__}") from None
        status = response.status_code
        if status in ok:
            return response
        detail = _error_code(response)
        if status == 429:
            error = RateLimited(f"{method} {path}: 429 {detail}")
            error.retry_after = _retry_after(response)
            raise error
        if status >= 500:
            raise ServerError(f"{method} {path}: {status} {detail}")
        if status in (401, 403):
            raise AuthError(f"{method} {path}: {status} {detail}")
        raise UnexpectedStatus(f"{method} {path}: {status} {detail}", status=status, code=detail)


class StreamedConnector(ReportConnector):
    """A style whose report is one CSV (``csv_columns``, maybe ``compression``ed), read one
    record batch at a time: :meth:`parse` is :meth:`read_batches` read whole.

    A style says how its facts state the totals and how a CSV batch maps onto the
    content schema; the reading is here, once."""

    csv_columns: ClassVar[dict[str, pa.DataType]]
    compression: ClassVar[str | None] = None

    @classmethod
    def parse(
        cls, config: SspConfig, body: bytes, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ParsedReport:
        return cls.read_batches(config, opener(body), facts, revenue_date).read_all()

    @classmethod
    def read_batches(
        cls, config: SspConfig, open_body: BodyOpener, facts: Mapping[str, Any], revenue_date: dt.date
    ) -> ReportBatches:
        stated = cls.stated_totals(facts)

        def batches() -> Iterator[pa.RecordBatch]:
            before = 0
            for raw in normalise.stream_report_csv(open_body, cls.csv_columns, compression=cls.compression):
                yield cls.canonical(config, raw, before)
                before += raw.num_rows

        return ReportBatches(batches(), stated)

    @classmethod
    @abc.abstractmethod
    def stated_totals(cls, facts: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The totals the report's facts state (rows, impressions, clicks, Decimal revenue)."""

    @staticmethod
    @abc.abstractmethod
    def canonical(config: SspConfig, raw: pa.RecordBatch, before: int) -> pa.RecordBatch:
        """One CSV batch in the content schema; ``before`` rows came in earlier batches."""


class UnexpectedStatus(MalformedReport):
    """A 4xx the connector must interpret (data not ready, expired token...)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("code") or body)[:200]
    return str(body)[:200]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
