"""Shared fixtures. Airflow's environment is set here, before anything imports Airflow."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# One directory per pytest-xdist worker: its own stack (moto, emulator), Airflow home and
# metadata DB, so workers share nothing but the machine.
LOCAL = ROOT / ".local" / "test" / os.environ.get("PYTEST_XDIST_WORKER", "main")
for path in (ROOT / "plugins", ROOT / "include"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ssp_revenue_airflow import local as airflow_local  # noqa: E402  (no Airflow import)

os.environ.update(airflow_local.airflow_environment(LOCAL))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ["GX_ANALYTICS_ENABLED"] = "False"


TOPOLOGY_TESTS = "tests/scheduler/"


def _topology(nodeid: str) -> bool:
    """A production-topology test (Airflow's processes, PostgreSQL, Redis)."""
    return nodeid.startswith(TOPOLOGY_TESTS)


REFERENCE = "tests/dags/test_scheduler_reference.py::"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The topology tests go first: under pytest-xdist they are one unit of work on one
    worker, the longest, so the other workers fill in around it. Next comes the dag.test()
    run of the topology's sequence, so it is the first unit of another worker and its lake
    is ready when the topology test that compares with it asks (tests/scheduler/reference.py)."""
    from tests.scheduler import reference

    items.sort(key=lambda item: (not _topology(item.nodeid), not item.nodeid.startswith(REFERENCE)))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    config.stash[reference.ELSEWHERE] = workers > 1 and any(i.nodeid == reference.NODEID for i in items) \
        and any(_topology(i.nodeid) for i in items)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's scheduling by scope: every test its own unit of work, except the
    production-topology tests, which are one unit on one worker, so
    one set of Airflow processes runs at a time and each module's deployment starts once.

    ``--dist loadgroup`` would say it with marks, but on pytest 9.2 it silently stops
    grouping (pytest-xdist issue 1386: it rewrites a node id field pytest no longer
    reads); this is the same scheduler, told the scopes directly."""
    from xdist.scheduler import LoadScopeScheduling

    class TopologyOnOneWorker(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "topology" if _topology(nodeid) else nodeid

    return TopologyOnOneWorker(config, log)


@pytest.fixture(scope="session")
def stack_state() -> Iterator[dict[str, object]]:
    """The real local stack (moto server + emulator), started by the project's own code."""
    from ssp_revenue.operate import stack

    local_stack = stack.LocalStack(LOCAL)
    state = local_stack.up()
    os.environ.update(stack.LOCAL_AWS_ENV)
    yield state
    local_stack.down()


@pytest.fixture
def emulator(stack_state: dict[str, object]) -> Iterator[EmulatorControl]:
    control = EmulatorControl(str(stack_state["emulator_url"]))
    control.reset()
    yield control
    control.reset()


class EmulatorControl:
    """Test-side client of the emulator's /_control routes, over HTTP."""

    def __init__(self, url: str) -> None:
        import requests

        self.url = url
        self.http = requests.Session()

    def _post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        response = self.http.post(self.url + path, data=json.dumps(body),
                                  headers={"Content-Type": "application/json"}, timeout=10)
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def reset(self) -> None:
        self._post("/_control/reset", {})
        self.http.delete(self.url + "/_control/faults", timeout=10)

    def clear(self, ssp: str | None = None) -> None:
        """Clear the faults of one SSP (all when None)."""
        self.http.delete(self.url + "/_control/faults", params={"ssp": ssp} if ssp else {}, timeout=10)

    def set_clock(self, at: dt.datetime) -> None:
        self._post("/_control/clock", {"now": at.isoformat()})

    def fault(self, ssp: str, fault: str, *, date: dt.date | None = None,
              times: int | None = None, **params: object) -> None:
        self._post("/_control/faults", {
            "ssp": ssp, "fault": fault, "date": date.isoformat() if date else None,
            "times": times, "params": params,
        })

    def profile(self, ssp: str, **changes: object) -> None:
        self._post("/_control/profile", {"ssp": ssp, **changes})

    def truth_rows(self, ssp: str, day: dt.date, at: dt.datetime) -> list[dict[str, object]]:
        response = self.http.get(self.url + "/_control/truth", timeout=60, params={
            "ssp": ssp, "date": day.isoformat(), "at": at.isoformat(), "rows": "1"})
        response.raise_for_status()
        rows: list[dict[str, object]] = response.json()["rows"]
        return rows

    def truth(self, ssp: str, day: dt.date, at: dt.datetime | None = None) -> dict[str, int]:
        params = {"ssp": ssp, "date": day.isoformat()}
        if at is not None:
            params["at"] = at.isoformat()
        response = self.http.get(self.url + "/_control/truth", params=params, timeout=30)
        response.raise_for_status()
        totals: dict[str, int] = response.json()["totals"]
        return totals


@pytest.fixture
def lake_settings(stack_state: dict[str, object]) -> object:
    """Settings on the local stack with a bucket and Glue database of this test's own."""
    from ssp_revenue.core.settings import Settings

    suffix = uuid.uuid4().hex[:10]
    return Settings(
        bucket=f"t-{suffix}",
        glue_database=f"t_{suffix}",
        region=str(stack_state["region"]),
        aws_endpoint=str(stack_state["s3_endpoint"]),
        emulator_url=str(stack_state["emulator_url"]),
        clock="emulator",
    )
