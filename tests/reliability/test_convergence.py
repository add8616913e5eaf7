"""Convergence, replayed: ordinary hiccups page nobody; each real problem opens one incident.

Every test replays the DAGs' schedule (daily runs, fetch chances, the close)
with ``ssp_revenue.operate.replay`` on the real local stack: moto's S3 and Glue over
HTTP, the SSP emulator over HTTP, its simulated clock moved run by run.

``SSP_REVENUE_SOAK_DAYS`` (``make soak``: 30, production windows) lengthens
the random-fault replay; ``make test`` runs a shorter one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random
import shutil
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.core import calendar, registry
from ssp_revenue.finalize import freeze
from ssp_revenue.ingest.connectors import RetryPolicy
from ssp_revenue.ingest.credentials import emulator_credentials
from ssp_revenue.lake import publish
from ssp_revenue.operate import incidents, replay, runtime, schedule
from ssp_revenue.operate.alerts import LakeAlertLog
from ssp_revenue.operate.runtime import Services

pytestmark = pytest.mark.integration

GO_LIVE = dt.date(2026, 10, 1)
TRANSIENT_FAULTS = ("rate_limit", "server_error", "timeout", "not_ready", "truncated", "malformed_rows",
                    "duplicated_rows", "empty_day", "still_writing")


@dataclasses.dataclass
class Replayer:
    """A lake of this test's own, replayed over the schedule."""

    settings: Any
    emulator: Any
    ssps: list[registry.SspConfig]

    def __post_init__(self) -> None:
        self.services: Services = runtime.services_for(self.settings)
        runtime.bootstrap(self.services)
        self.emulator.set_clock(calendar.date_start(self.settings.start_date, self.settings.tz))

    def connector(self, config: registry.SspConfig) -> Any:
        import time

        return runtime.connector(
            config, emulator_credentials(config.name, self.settings.emulator_url, self.settings.aws_endpoint),
            self.services, retry=RetryPolicy(attempts=3, initial=0.01, jitter=0.01, sleep=lambda s: time.sleep(min(s, 0.02))))

    def run(self, offset: float, days: float, before_run: Any = None) -> replay.ReplayReport:
        """Replay ``days`` from ``offset`` days after the go-live date's start."""
        start = calendar.date_start(GO_LIVE, self.settings.tz) + dt.timedelta(days=offset)
        return replay.replay(start, start + dt.timedelta(days=days), services=self.services, ssps=self.ssps,
                             connectors=self.connector, before_run=before_run)

    def book(self) -> incidents.IncidentBook:
        return incidents.IncidentBook(self.services.s3, self.settings.bucket)

    def incidents(self) -> list[incidents.Incident]:
        book = self.book()
        return [i for s in [c.name for c in self.ssps] + [incidents.EVERY_SSP] for i in book.history(s)]

    def notices(self) -> list[dict[str, Any]]:
        return LakeAlertLog(self.services.s3, self.settings.bucket).read()


def replayer(lake_settings: Any, emulator: Any, tmp_path: Path, names: list[str], **changes: Any) -> Replayer:
    config_dir = tmp_path / "config"
    shutil.copytree(lake_settings.config_dir, config_dir)
    settings = dataclasses.replace(lake_settings, clock="replay", start_date=GO_LIVE, config_dir=config_dir,
                                   **changes)
    ssps = [registry.find(registry.load_registry(config_dir / "ssps.yaml"), n) for n in names]
    return Replayer(settings, emulator, ssps)


def money(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6)


def test_a_fortnight_of_hiccups_pages_nobody_and_freezes_the_truth(lake_settings: Any, emulator: Any,
                                                                   tmp_path: Path) -> None:
    """Transient faults on about half the (SSP, date)s, one occurrence each, aimed at the
    attempts that matter: a pre-cutoff chance (for the late SSPs often their first or only
    one in the daily schedule) and the first fetch after the cutoff."""
    days = int(os.environ.get("SSP_REVENUE_SOAK_DAYS", "4"))
    soak = days >= 14
    names = ["adpulse", "xchange", "nihon", "dropzone", "gamnet"]
    env = replayer(lake_settings, emulator, tmp_path, names,
                   refetch_days=7 if soak else 3, adjustment_days=45 if soak else 4)
    rng = random.Random(13)
    # (ssp, date) -> (the instant of the attempt to spoil, the fault)
    targets: dict[tuple[str, dt.date], tuple[dt.datetime, str]] = {}
    for config in env.ssps:
        for n in range(days):
            day = GO_LIVE + dt.timedelta(days=n)
            if rng.random() >= 0.5:
                continue
            attempts = schedule.attempts_before_cutoff(config, day, env.settings)
            after = calendar.run_due(day + dt.timedelta(days=2), env.settings.tz)  # first run after the cutoff
            chosen = rng.choice([attempts[0], attempts[-1], after, rng.choice(attempts)])
            targets[(config.name, day)] = (chosen, rng.choice(TRANSIENT_FAULTS))
    injected: Counter[str] = Counter()

    def spoil(run: schedule.Run) -> None:
        for (ssp, day), (at, fault) in targets.items():
            if at == run.due:
                env.emulator.fault(ssp, fault, date=day, times=1)
                injected[fault] += 1

    report = env.run(0, days + 3, before_run=spoil)
    print(f"replay: {report.summary()}; faults injected {dict(injected)}")
    assert sum(injected.values()) >= len(targets) * 0.9  # the rest fall after the replay's end

    assert report.notices == [] and env.incidents() == [] and env.notices() == []
    tz = env.settings.tz
    frozen_late = 0
    for config in env.ssps:
        for n in range(days):
            day = GO_LIVE + dt.timedelta(days=n)
            entry = freeze.read_ledger(env.services.s3, env.settings.bucket, config.name, day)
            assert entry is not None, (config.name, day)
            frozen_late += entry.late
            cut = calendar.cutoff(day, tz, env.settings.freeze_hours)
            fetches = publish.read_publish_log(env.services.s3, env.services.catalog, config.name, day).to_pylist()
            last = max(r["fetched_at"] for r in fetches if r["fetched_at"] <= cut)
            assert entry.fetched_at == last and not entry.late, (config.name, day)
            truth = env.emulator.truth(config.name, day, entry.fetched_at)
            assert (entry.row_count, entry.impressions, entry.clicks) == (
                truth["rows"], truth["impressions"], truth["clicks"]), (config.name, day)
            if config.name != "nihon":  # nihon's truth includes the consumption tax we strip
                assert Decimal(entry.revenue) == money(truth["revenue_micros"]), (config.name, day)
    assert frozen_late == 0


def only(found: list[incidents.Incident], reason: str) -> incidents.Incident:
    matching = [i for i in found if i.problem.reason == reason]
    assert len(matching) == 1, [(i.incident_id, sorted(i.dates)) for i in found]
    return matching[0]


def test_revoked_credentials_open_one_incident_that_lists_its_dates_and_resolves(
        lake_settings: Any, emulator: Any, tmp_path: Path) -> None:
    env = replayer(lake_settings, emulator, tmp_path, ["adpulse"], refetch_days=3, adjustment_days=5)
    env.run(0, 2)
    emulator.fault("adpulse", "revoked_credentials")  # until cleared: several runs
    revoked = env.run(2, 1)
    emulator.clear("adpulse")
    healed = env.run(3, 2)

    incident = only(env.incidents(), "auth")
    assert incident.problem == incidents.Problem("adpulse", "auth") and not incident.is_open
    assert [n["event"] for n in env.notices()] == ["opened", "resolved"]
    assert revoked.runs["chance"] + revoked.runs["daily"] >= 3
    assert {GO_LIVE, GO_LIVE + dt.timedelta(days=1)} <= incident.dates  # the window of the outage's runs
    assert healed.opened == [] and [n["incident_id"] for n in healed.resolved] == ["adpulse.auth.1"]
    # A date whose every pre-cutoff chance fell in the outage was frozen late: a consequence, not a page.
    late = [d for d in incident.dates
            if (e := freeze.read_ledger(env.services.s3, env.settings.bucket, "adpulse", d)) and e.late]
    assert sorted(incident.consequences) == [d.isoformat() for d in sorted(late)]


def test_schema_drift_opens_one_incident_however_many_dates_and_a_return_opens_another(
        lake_settings: Any, emulator: Any, tmp_path: Path) -> None:
    env = replayer(lake_settings, emulator, tmp_path, ["xchange"], refetch_days=3, adjustment_days=4)
    env.run(0, 2)
    emulator.fault("xchange", "renamed_column")
    env.run(2, 0.5)
    emulator.clear("xchange")
    env.run(2.5, 1)
    first = only(env.incidents(), "schema_drift")
    assert not first.is_open and len(first.dates) >= 2
    emulator.fault("xchange", "renamed_column")  # it comes back: a new incident
    env.run(3.5, 0.5)
    found = [i for i in env.incidents() if i.problem.reason == "schema_drift"]
    assert [(i.number, i.is_open) for i in found] == [(1, False), (2, True)]
    assert [n["event"] for n in env.notices()] == ["opened", "resolved", "opened"]


def test_a_wrong_currency_past_the_cutoff_is_one_incident_with_its_consequences(
        lake_settings: Any, emulator: Any, tmp_path: Path) -> None:
    env = replayer(lake_settings, emulator, tmp_path, ["adpulse"], refetch_days=4, adjustment_days=5,
                   grace_hours=12)
    env.run(0, 1)
    emulator.fault("adpulse", "wrong_currency")  # every date, until cleared
    env.run(1, 3)
    emulator.clear("adpulse")
    env.run(4, 1)
    incident = only(env.incidents(), "wrong_currency")
    assert not incident.is_open
    assert [n["event"] for n in env.notices()] == ["opened", "resolved"]
    # The dates it kept from freezing on time are listed under it, not paged again.
    assert incident.consequences and set(incident.consequences) <= {d.isoformat() for d in incident.dates}


def test_a_missing_fx_rate_past_grace_is_one_incident_resolved_when_the_rate_arrives(
        lake_settings: Any, emulator: Any, tmp_path: Path) -> None:
    env = replayer(lake_settings, emulator, tmp_path, ["xchange"], refetch_days=3, adjustment_days=5,
                   grace_hours=12)
    rates = env.settings.config_dir / "fx_rates.csv"
    full = rates.read_text()
    gap = {(GO_LIVE + dt.timedelta(days=n)).isoformat() for n in range(3)}
    rates.write_text("".join(line for line in full.splitlines(keepends=True)
                             if not (line.split(",")[0] in gap and ",USD," in line)))
    env.run(0, 5)
    incident = only(env.incidents(), "missing_reference_data")
    assert incident.is_open and incident.dates >= {GO_LIVE}
    rates.write_text(full)
    env.run(5, 1)
    incident = only(env.incidents(), "missing_reference_data")
    assert not incident.is_open
    assert [n["event"] for n in env.notices()] == ["opened", "resolved"]


def test_a_ledger_mismatch_and_a_large_restatement_each_open_one_incident(
        lake_settings: Any, emulator: Any, tmp_path: Path) -> None:
    env = replayer(lake_settings, emulator, tmp_path, ["adpulse"], refetch_days=3, adjustment_days=5,
                   restatement_alert_pct=0.5)
    env.run(0, 5)
    # adpulse restates 40 h after the day: after the cutoff. Each date over the
    # threshold is one incident of its own (a date-specific problem).
    restated = [i for i in env.incidents() if i.problem.reason == "large_restatement"]
    assert restated and len({i.problem.revenue_date for i in restated}) == len(restated)
    assert all(i.number == 1 and i.is_open for i in restated)
    glue, catalog = env.services.catalog.glue, env.services.catalog
    day = GO_LIVE + dt.timedelta(days=1)
    found = catalog.get_partition("revenue_final", day.isoformat(), "adpulse")
    assert found is not None

    def point(location: str) -> None:
        glue.update_partition(
            DatabaseName=env.settings.glue_database, TableName="revenue_final",
            PartitionValueList=[day.isoformat(), "adpulse"],
            PartitionInput={"Values": [day.isoformat(), "adpulse"],
                            "StorageDescriptor": {"Location": location}, "Parameters": found.parameters})

    point(found.location.replace("version=", "version=0000"))  # a mistaken operator
    env.run(5, 1)
    mismatch = only(env.incidents(), "ledger_mismatch")
    assert mismatch.problem.revenue_date == day and mismatch.is_open
    point(found.location)  # put right, as the runbook says
    env.run(6, 3)
    assert not only(env.incidents(), "ledger_mismatch").is_open
    # A restatement is over once its date leaves the fetch window.
    oldest = env.services.window_start(env.services.clock.now())
    restated = [i for i in env.incidents() if i.problem.reason == "large_restatement"]
    assert any(not i.is_open for i in restated)
    assert all(i.is_open == (i.problem.revenue_date >= oldest) for i in restated)
    events = Counter((n["incident_id"], n["event"]) for n in env.notices())
    assert set(events.values()) == {1}
    assert {i for i, _ in events} == {i.incident_id for i in env.incidents()}
