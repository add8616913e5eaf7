"""The convergence policy: which outcomes heal by themselves, and which need a person."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from ssp_revenue.errors import PipelineError, Reason


class Severity(enum.StrEnum):
    OK = "ok"
    CONVERGING = "converging"  # logged; the next run heals it
    ACTIONABLE = "actionable"  # alerted; nothing will heal it by waiting


# Reasons that never heal by waiting, whatever the date.
_ALWAYS_ACTIONABLE = frozenset(
    {
        Reason.AUTH,
        Reason.MISSING_CONNECTION,
        Reason.SCHEMA_DRIFT,
        Reason.LATE_VERSION,
        Reason.LEDGER_MISMATCH,
        Reason.LARGE_RESTATEMENT,
        Reason.RULES,
        Reason.NOT_CLOSABLE,
    }
)
# Reasons that heal while the date is still open (before its cutoff).
_CONVERGING_BEFORE_CUTOFF = frozenset(
    {
        Reason.DATA_NOT_READY,
        Reason.RATE_LIMITED,
        Reason.SERVER_ERROR,
        Reason.TIMEOUT,
        Reason.MALFORMED,
        Reason.VALIDATION,
        Reason.STORAGE,
    }
)


def classify(
    reason: Reason,
    *,
    now: dt.datetime,
    cutoff: dt.datetime,
    grace: dt.timedelta = dt.timedelta(0),
    frozen: bool = False,
) -> Severity:
    """One place decides: converging while a rerun can still fix it, actionable otherwise.

    - auth failures, schema drift, late versions, ledger mismatches and large
      restatements always need a person;
    - a date with no validated version at its cutoff, or with no FX rate or
      delivery metric to allocate it by, waits (converging) until the grace
      period after its cutoff ends, then needs a person;
    - anything transient (not ready, 429, 5xx, timeouts, a malformed or invalid
      batch, a storage hiccup) converges while the date is before its cutoff,
      and also once the date is frozen (its final figures are safe; later
      fetches only feed adjustments); at or after the cutoff of an unfrozen date
      it needs a person.
    """
    if reason in _ALWAYS_ACTIONABLE:
        return Severity.ACTIONABLE
    if reason in (Reason.NO_VERSION_AT_CUTOFF, Reason.MISSING_REFERENCE):
        return Severity.CONVERGING if now < cutoff + grace else Severity.ACTIONABLE
    if reason in _CONVERGING_BEFORE_CUTOFF and (now < cutoff or frozen):
        return Severity.CONVERGING
    return Severity.ACTIONABLE


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """What one step did for one (SSP, revenue date); small enough for XCom."""

    ssp: str
    revenue_date: dt.date
    step: str
    severity: Severity
    detail: str
    reason: Reason | None = None

    @classmethod
    def ok(cls, ssp: str, revenue_date: dt.date, step: str, detail: str) -> StepOutcome:
        return cls(ssp, revenue_date, step, Severity.OK, detail)

    @classmethod
    def failed(
        cls, error: PipelineError, *, ssp: str, revenue_date: dt.date, step: str,
        now: dt.datetime, cutoff: dt.datetime, grace: dt.timedelta = dt.timedelta(0),
        frozen: bool = False,
    ) -> StepOutcome:
        severity = classify(error.reason, now=now, cutoff=cutoff, grace=grace, frozen=frozen)
        return cls(ssp, revenue_date, step, severity, str(error), error.reason)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "ssp": self.ssp,
            "revenue_date": self.revenue_date.isoformat(),
            "step": self.step,
            "severity": self.severity.value,
            "detail": self.detail,
            "reason": self.reason.value if self.reason else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> StepOutcome:
        return cls(
            ssp=str(data["ssp"]),
            revenue_date=dt.date.fromisoformat(str(data["revenue_date"])),
            step=str(data["step"]),
            severity=Severity(str(data["severity"])),
            detail=str(data["detail"]),
            reason=Reason(str(data["reason"])) if data.get("reason") else None,
        )


class ActionableFailure(Exception):
    """Raised at the end of a step when any (SSP, date) needs a person."""

    def __init__(self, outcomes: list[StepOutcome], alerts: list[Any] | None = None) -> None:
        self.outcomes = outcomes
        self.alerts = alerts or []
        lines = "\n".join(f"  - {o.ssp} {o.revenue_date}: {o.detail}" for o in outcomes)
        super().__init__(f"{len(outcomes)} actionable outcome(s):\n{lines}")
