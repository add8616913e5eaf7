"""Clocks: time is an input to the library, never read from the wall inside it."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware (UTC)."""
        ...

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` go by while a report job runs at the SSP (a poll interval).

        Simulated clocks spend no wall time: the emulator's report jobs finish after a
        number of polls, not of seconds, and only the harness moves simulated time."""
        ...


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: clocks deal only in aware instants")
    return value.astimezone(dt.UTC)


class SystemClock:
    """Production clock: the wall time, taken at the edge and passed in."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


class FixedClock:
    """A clock the caller moves by hand (unit tests, replays)."""

    def __init__(self, at: dt.datetime) -> None:
        self._at = _aware(at)

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime) -> None:
        self._at = _aware(at)

    def advance(self, delta: dt.timedelta) -> None:
        self._at = self._at + delta

    def wait(self, seconds: float) -> None:
        """Time stands still until the caller moves it."""


class EmulatorClock:
    """The simulated clock kept by the SSP emulator, shared with the pipeline.

    Demo and test runs move it with ``POST /_control/clock``; every pipeline
    step then sees the same instant the emulator serves figures for.
    """

    def __init__(self, emulator_url: str, timeout: float = 5.0) -> None:
        if not emulator_url.startswith(("http://", "https://")):
            raise ValueError(f"emulator URL must be http(s): {emulator_url!r}")
        self._url = emulator_url.rstrip("/") + "/_control/clock"
        self._timeout = timeout

    def now(self) -> dt.datetime:
        with urllib.request.urlopen(self._url, timeout=self._timeout) as resp:  # noqa: S310  # nosec B310 - http(s) checked
            body = json.loads(resp.read())
        return parse_instant(body["now"])

    def wait(self, seconds: float) -> None:
        """No wall time: see ``Clock.wait``."""

    def set(self, at: dt.datetime) -> None:
        data = json.dumps({"now": _aware(at).isoformat()}).encode()
        req = urllib.request.Request(  # noqa: S310 - loopback URL from settings
            self._url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        # Moving the clock makes the emulator deliver the file drops now due: slower than a read.
        with urllib.request.urlopen(req, timeout=max(self._timeout, 120.0)):  # noqa: S310  # nosec B310 - http(s) checked
            pass


def parse_instant(text: str) -> dt.datetime:
    """Parse an ISO-8601 instant; a naive one is refused rather than guessed."""
    return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
