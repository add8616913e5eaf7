"""The convergence policy: which outcomes heal by themselves, and which need a person."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any

from ssp_revenue.core.errors import PipelineError, Reason


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
        Reason.STATEMENT_REJECTED,
        Reason.STATEMENT_VARIANCE,
        Reason.STATEMENT_OVERDUE,
        Reason.STATEMENT_CORRECTED,
    }
)
# Reasons a later fetch of the same date can heal.
TRANSIENT = frozenset(
    {
        Reason.DATA_NOT_READY,
        Reason.RATE_LIMITED,
        Reason.SERVER_ERROR,
        Reason.TIMEOUT,
        Reason.MALFORMED,
        Reason.VALIDATION,
        Reason.WRONG_CURRENCY,
        Reason.STORAGE,
    }
)


def classify(
    reason: Reason,
    *,
    now: dt.datetime,
    cutoff: dt.datetime,
    grace: dt.timedelta = dt.timedelta(0),
    freezable: bool = False,
) -> Severity:
    """One place decides, by what is at stake: converging while waiting can still fix
    it, actionable otherwise.

    - auth failures, a missing Connection, schema drift, late versions, ledger
      mismatches, large restatements, bad rules and an unclosable month always
      need a person;
    - a transient failure (not ready, 429, 5xx, timeout, a malformed, invalid or
      wrong-currency batch, a storage hiccup) on a date that already has its
      freezable version (validated, fetched by the cutoff; or frozen) can only
      delay an adjustment: converging for as long as the date is fetched;
    - on a date without one, a transient failure, a missing version at the
      cutoff or a missing FX rate / delivery metric converges until the grace
      period after the cutoff ends, then needs a person.
    """
    if reason in _ALWAYS_ACTIONABLE:
        return Severity.ACTIONABLE
    if reason in TRANSIENT and freezable:
        return Severity.CONVERGING
    if reason in TRANSIENT or reason in (Reason.NO_VERSION_AT_CUTOFF, Reason.MISSING_REFERENCE):
        return Severity.CONVERGING if now < cutoff + grace else Severity.ACTIONABLE
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
        freezable: bool = False,
    ) -> StepOutcome:
        severity = classify(error.reason, now=now, cutoff=cutoff, grace=grace, freezable=freezable)
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
    """Raised at the end of a run when it opened incidents: someone must act."""

    def __init__(self, outcomes: list[StepOutcome], alerts: list[dict[str, Any]] | None = None) -> None:
        self.outcomes = outcomes
        self.alerts = alerts or []
        pages = [a for a in self.alerts if a.get("event") == "opened"]
        if pages:
            lines = "\n".join(f"  - {a['incident_id']} [{a['reason']}] {a['ssp']} {a['revenue_date']}: "
                              f"{a['detail']} (runbook: {a['runbook']})" for a in pages)
            super().__init__(f"{len(pages)} incident(s) opened:\n{lines}")
            return
        lines = "\n".join(f"  - {o.ssp} {o.revenue_date}: {o.detail}" for o in outcomes)
        super().__init__(f"{len(outcomes)} actionable outcome(s):\n{lines}")
