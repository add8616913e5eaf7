"""Retry logic of the connector base, against a fake HTTP session (unit level)."""

import datetime as dt
from typing import Any

import pytest
import requests

from ssp_revenue.core.clock import FixedClock
from ssp_revenue.core.errors import AuthError, DataNotReady, RateLimited, ServerError
from ssp_revenue.ingest.connectors.async_job import AsyncJobConnector
from ssp_revenue.ingest.connectors.base import Credentials, RetryPolicy

from .helpers import CONFIG, DAY


class FakeResponse:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                 content: bytes = b"") -> None:
        self.status_code = status
        self._body = body
        self.headers = headers or {}
        self.content = content
        self.text = str(body)

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("no json")
        return self._body


class FakeSession:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        self.calls.append((method, url))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def connector(answers: list[Any], attempts: int = 4) -> tuple[AsyncJobConnector, FakeSession, list[float]]:
    sleeps: list[float] = []
    session = FakeSession(answers)
    c = AsyncJobConnector(
        CONFIG, Credentials("http://127.0.0.1:9", "id", "secret"),
        clock=FixedClock(dt.datetime(2026, 11, 6, tzinfo=dt.UTC)), business_tz="Asia/Tokyo",
        retry=RetryPolicy(attempts=attempts, initial=1.0, jitter=0.5, sleep=sleeps.append),
        session=session,  # type: ignore[arg-type]
    )
    return c, session, sleeps


def test_429_waits_exactly_what_retry_after_says_then_succeeds() -> None:
    c, session, sleeps = connector([
        FakeResponse(429, {"error": "rate_limited"}, {"Retry-After": "7"}),
        FakeResponse(200, {"ok": 1}),
    ])
    assert c.request("GET", "x").json() == {"ok": 1}
    assert sleeps == [7.0]
    assert len(session.calls) == 2


def test_5xx_and_timeouts_back_off_exponentially_with_jitter() -> None:
    c, _, sleeps = connector([
        FakeResponse(503, {"error": "x"}),
        requests.Timeout(),
        FakeResponse(502, {"error": "x"}),
        FakeResponse(200, {"ok": 1}),
    ])
    c.request("GET", "x")
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps, start=1):
        base = 2 ** (attempt - 1)
        assert base <= slept <= base + 0.5


def test_retries_stop_and_the_error_names_ssp_and_date() -> None:
    c, session, _ = connector([FakeResponse(503, {"error": "x"})] * 4, attempts=4)
    with pytest.raises(ServerError) as info:
        c.request("GET", "x", revenue_date=DAY)
    assert len(session.calls) == 4
    assert info.value.ssp == "adpulse" and info.value.revenue_date == DAY


def test_401_fails_fast_without_retrying() -> None:
    c, session, sleeps = connector([FakeResponse(401, {"error": "invalid_client"})])
    with pytest.raises(AuthError):
        c.request("POST", "token")
    assert len(session.calls) == 1 and sleeps == []


def test_rate_limit_exhausted_is_rate_limited() -> None:
    c, _, _ = connector([FakeResponse(429, {}, {"Retry-After": "1"})] * 2, attempts=2)
    with pytest.raises(RateLimited):
        c.request("GET", "x")


def test_data_not_ready_is_its_own_outcome() -> None:
    c, _, _ = connector([
        FakeResponse(200, {"access_token": "t", "expires_in": 3600}),
        FakeResponse(409, {"error": "DATA_NOT_READY"}),
    ])
    with pytest.raises(DataNotReady):
        c.fetch(DAY)


def test_an_expired_token_is_refreshed_once() -> None:
    c, session, _ = connector([
        FakeResponse(200, {"access_token": "t1", "expires_in": 3600}),
        FakeResponse(401, {"error": "token_expired"}),
        FakeResponse(200, {"access_token": "t2", "expires_in": 3600}),
        FakeResponse(202, {"id": "job-1"}),
        FakeResponse(200, {"status": "DONE", "parts": 1, "size": 3,
                           "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                           "totals": None}),
        FakeResponse(200, content=b"abc"),
    ])
    report = c.fetch(DAY)
    assert report.body.read() == b"abc"
    assert [u.rsplit("/", 1)[-1] for _, u in session.calls][:4] == ["token", "reports", "token", "reports"]


def test_a_part_download_that_does_not_match_the_stated_hash_is_retried_then_refused() -> None:
    status = FakeResponse(200, {"status": "DONE", "parts": 1, "size": 3, "sha256": "0" * 64})
    c, _, _ = connector([
        FakeResponse(200, {"access_token": "t", "expires_in": 3600}),
        FakeResponse(202, {"id": "job-1"}),
        status,
        FakeResponse(200, content=b"ab"), FakeResponse(200, content=b"ab"),
        FakeResponse(200, content=b"ab"),
    ])
    with pytest.raises(ServerError, match="stated 3 bytes"):
        c.fetch(DAY)


class WaitingClock(FixedClock):
    """A fixed clock that records the waits asked of it."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at)
        self.waits: list[float] = []

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_a_report_job_is_polled_through_the_clock_not_the_retry_sleep() -> None:
    # Polling is waiting for the SSP, not backing off from an error: on a simulated
    # clock it must cost no wall time, whatever the retry policy sleeps.
    c, _, sleeps = connector([
        FakeResponse(200, {"access_token": "t", "expires_in": 3600}),
        FakeResponse(202, {"id": "job-1"}),
        FakeResponse(200, {"status": "RUNNING"}),
        FakeResponse(200, {"status": "RUNNING"}),
        FakeResponse(200, {"status": "DONE", "parts": 1, "size": 3,
                           "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                           "totals": None}),
        FakeResponse(200, content=b"abc"),
    ])
    c.clock = clock = WaitingClock(dt.datetime(2026, 11, 6, tzinfo=dt.UTC))
    assert c.fetch(DAY).body.read() == b"abc"
    assert clock.waits == [0.25, 0.5] and sleeps == []


def test_the_simulated_clocks_spend_no_wall_time_waiting() -> None:
    import time

    from ssp_revenue.core.clock import EmulatorClock

    started = time.monotonic()
    FixedClock(dt.datetime(2026, 11, 6, tzinfo=dt.UTC)).wait(30)
    EmulatorClock("http://127.0.0.1:9").wait(30)  # no request either: nothing listens there
    assert time.monotonic() - started < 1
