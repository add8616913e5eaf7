"""A replayed run's SSP jobs run side by side; what it reports does not depend on which ended first."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ssp_revenue.core import registry
from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import replay, runs
from ssp_revenue.operate.outcomes import ActionableFailure

SSPS = registry.load_registry(Settings().config_dir / "ssps.yaml")


def test_jobs_overlap_and_their_notices_come_back_in_job_order(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [s.name for s in SSPS][:4]
    # The first job ends last: each waits until every later one has started and ended.
    ended: list[str] = []
    at_once = threading.Barrier(len(names), timeout=10)

    def run_job(job: dict[str, Any], config: registry.SspConfig, connector: Any, services: Any) -> list[Any]:
        at_once.wait()  # all four are running together, or this times out
        time.sleep(0.05 * (len(names) - names.index(job["ssp"])))
        ended.append(job["ssp"])
        notice = {"event": "opened", "ssp": job["ssp"], "incident_id": job["ssp"], "reason": "x",
                  "revenue_date": "2026-11-01", "detail": "", "runbook": ""}
        if job["ssp"] == names[1]:
            raise ActionableFailure([], [notice])
        return [notice]

    monkeypatch.setattr(runs, "run_job", run_job)
    jobs = [{"ssp": name, "dates": []} for name in names]
    notices = replay.run_jobs(jobs, SSPS, lambda config: None, services=None)
    assert ended == names[::-1]
    assert [n["ssp"] for n in notices] == names  # the failing job's notices too, in its place


def test_a_crash_in_one_job_is_raised_after_the_others_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [s.name for s in SSPS][:3]
    ran: list[str] = []

    def run_job(job: dict[str, Any], config: registry.SspConfig, connector: Any, services: Any) -> list[Any]:
        ran.append(job["ssp"])
        if job["ssp"] == names[0]:
            raise RuntimeError("boom")
        return []

    monkeypatch.setattr(runs, "run_job", run_job)
    with pytest.raises(RuntimeError, match="boom"):
        replay.run_jobs([{"ssp": n, "dates": []} for n in names], SSPS, lambda config: None,
                        services=None)
    assert sorted(ran) == sorted(names)
