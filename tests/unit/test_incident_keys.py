"""Incident keys, and a runbook section for every reason that can page."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from ssp_revenue.core.errors import Reason
from ssp_revenue.operate.incidents import Problem
from ssp_revenue.operate.outcomes import Severity, StepOutcome

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
DAY = dt.date(2026, 11, 5)


def outcome(reason: Reason, ssp: str = "adpulse") -> StepOutcome:
    return StepOutcome(ssp, DAY, "fetch", Severity.ACTIONABLE, "detail", reason)


@pytest.mark.parametrize("reason", [Reason.AUTH, Reason.MISSING_CONNECTION, Reason.SCHEMA_DRIFT,
                                    Reason.WRONG_CURRENCY, Reason.MISSING_REFERENCE])
def test_what_is_wrong_with_the_ssp_is_one_problem_whatever_the_date(reason: Reason) -> None:
    assert Problem.of(outcome(reason)) == Problem("adpulse", reason.value)
    later = StepOutcome("adpulse", DAY + dt.timedelta(days=9), "validate", Severity.ACTIONABLE, "x", reason)
    assert Problem.of(later) == Problem.of(outcome(reason))


@pytest.mark.parametrize("reason", [Reason.LATE_VERSION, Reason.LEDGER_MISMATCH, Reason.LARGE_RESTATEMENT,
                                    Reason.NO_VERSION_AT_CUTOFF])
def test_what_is_wrong_with_one_date_is_keyed_by_the_date(reason: Reason) -> None:
    assert Problem.of(outcome(reason)) == Problem("adpulse", reason.value, DAY)


@pytest.mark.parametrize("reason", [Reason.SERVER_ERROR, Reason.VALIDATION, Reason.DATA_NOT_READY])
def test_a_hiccup_still_failing_past_grace_is_the_dates_missing_version(reason: Reason) -> None:
    assert Problem.of(outcome(reason)) == Problem("adpulse", "no_version_at_cutoff", DAY)


def test_bad_rules_are_one_problem_for_every_ssp() -> None:
    assert Problem.of(outcome(Reason.RULES, "xchange")) == Problem.of(outcome(Reason.RULES)) == Problem(
        "all", Reason.RULES.value)


def test_every_reason_that_can_page_has_its_runbook_section() -> None:
    headings = set(re.findall(r"^### (\S+)$", RUNBOOK.read_text(), flags=re.M))
    reasons = {Problem.of(outcome(r)).reason for r in Reason}
    assert reasons | {"task_failed"} <= headings, sorted(reasons - headings)
    assert Problem("adpulse", "auth").runbook == "docs/runbook.md#auth"
