"""The convergence policy: which outcomes heal by themselves, and which need a person."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from ssp_revenue.errors import PipelineError, Reason


class Severity(enum.StrEnum):
    OK = "ok"
    CONVERGING = "converging"  # logged; the next run heals it
    ACTIONABLE = "actionable"  # alerted; nothing will heal it by waiting


# Reasons that never heal by waiting, whatever the date.
_ALWAYS_ACTIONABLE = frozenset({Reason.AUTH, Reason.SCHEMA_DRIFT})
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


def classify(reason: Reason, *, now: dt.datetime, cutoff: dt.datetime) -> Severity:
    """One place decides: converging while the date can still be fixed by a rerun."""
    if reason in _ALWAYS_ACTIONABLE:
        return Severity.ACTIONABLE
    if reason in _CONVERGING_BEFORE_CUTOFF and now < cutoff:
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
        now: dt.datetime, cutoff: dt.datetime,
    ) -> StepOutcome:
        return cls(
            ssp,
            revenue_date,
            step,
            classify(error.reason, now=now, cutoff=cutoff),
            str(error),
            error.reason,
        )

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

    def __init__(self, outcomes: list[StepOutcome]) -> None:
        self.outcomes = outcomes
        lines = "\n".join(f"  - {o.ssp} {o.revenue_date}: {o.detail}" for o in outcomes)
        super().__init__(f"{len(outcomes)} actionable outcome(s):\n{lines}")
