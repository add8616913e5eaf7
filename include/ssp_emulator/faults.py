"""Fault switches: what an SSP does wrong, per SSP and per date, for a number of times."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

# Faults on the HTTP exchange (any API request of the SSP).
REQUEST_FAULTS = frozenset({"rate_limit", "server_error", "timeout", "revoked_credentials"})
# Faults on a report's content or availability (applied when a report is made or served).
REPORT_FAULTS = frozenset(
    {
        "not_ready",
        "truncated",
        "malformed_rows",
        "duplicated_rows",
        "renamed_column",
        "wrong_currency",
        "empty_day",
        "still_writing",
    }
)
ALL_FAULTS = REQUEST_FAULTS | REPORT_FAULTS


@dataclasses.dataclass
class Fault:
    ssp: str
    kind: str
    revenue_date: dt.date | None = None  # None: every date
    times: int | None = None  # None: until cleared
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def matches(self, ssp: str, kind: str, revenue_date: dt.date | None) -> bool:
        if self.ssp != ssp or self.kind != kind:
            return False
        return self.revenue_date is None or revenue_date is None or self.revenue_date == revenue_date


class FaultBoard:
    """Thread-safe set of active faults; taking a fault consumes one of its times."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.kind not in ALL_FAULTS:
            raise ValueError(f"unknown fault {fault.kind!r}; known: {sorted(ALL_FAULTS)}")
        with self._lock:
            self._faults.append(fault)

    def clear(self, ssp: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if ssp is not None and f.ssp != ssp]

    def take(
        self, ssp: str, kind: str, revenue_date: dt.date | None = None, consume: bool = True
    ) -> Fault | None:
        """The matching fault, if any; ``consume=False`` looks without using one of its times
        (a paginated report applies its content faults to every page, consumed once)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(ssp, kind, revenue_date):
                    if consume and fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "ssp": f.ssp,
                    "fault": f.kind,
                    "date": f.revenue_date.isoformat() if f.revenue_date else None,
                    "times": f.times,
                    "params": f.params,
                }
                for f in self._faults
            ]
