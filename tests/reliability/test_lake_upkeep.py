"""Compaction and vacuum on a lake with history: readers never notice, a kill at any write
converges, and nothing frozen or named is ever deleted."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess  # nosec B404: the process under test
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ssp_revenue.finalize import freeze
from ssp_revenue.lake import logs, publish, store
from ssp_revenue.lake.catalog import TABLES
from ssp_revenue.operate import maintenance, vacuum
from ssp_revenue.operate.pipeline import run_ssp
from tests.integration.conftest import Lake, run_instant

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FIRST = dt.date(2026, 11, 1)


def build_history(env: Lake, emulator: Any, runs: int) -> dt.datetime:
    """Daily runs of adpulse: restatements supersede versions, dates freeze, adjustments follow."""
    at = run_instant(FIRST)
    for r in range(runs):
        at = run_instant(FIRST + dt.timedelta(days=r))
        emulator.set_clock(at)
        dates = [FIRST + dt.timedelta(days=d) for d in range(r + 1)]
        run_ssp(env.config, dates, env.connector(), env.services)
    return at


def everything(env: Lake) -> dict[str, list[tuple[Any, ...]]]:
    engine = env.engine()
    return {table: sorted(engine.query(f"SELECT * FROM {table}").rows, key=repr) for table in TABLES}


def files_of(env: Lake, table: str) -> int:
    return sum(len(store.parquet_keys(env.services.s3, env.settings.bucket,
                                     store.split_uri(p.location)[1]))
               for p in env.services.catalog.partitions(table))


class Readers:
    """A reader querying every table in a loop; any error or different answer is kept."""

    def __init__(self, env: Lake, expected: dict[str, list[tuple[Any, ...]]]) -> None:
        self.env, self.expected = env, expected
        self.stop = threading.Event()
        self.reads = 0
        self.problems: list[str] = []
        self.thread = threading.Thread(target=self.loop)

    def loop(self) -> None:
        while not self.stop.is_set():
            try:
                seen = everything(self.env)
            except Exception as exc:
                self.problems.append(repr(exc))
                continue
            self.reads += 1
            self.problems += [t for t in TABLES if seen[t] != self.expected[t]]

    def __enter__(self) -> Readers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def protected_exist(env: Lake) -> None:
    """Every version the ledger or an adjustment names is still there, and revenue_final whole."""
    s3, bucket = env.services.s3, env.settings.bucket
    for day, ssp, version in vacuum.protected_versions(s3, bucket):
        assert store.parquet_keys(s3, bucket, store.version_prefix("revenue", ssp, dt.date.fromisoformat(day),
                                                                 version)), (day, ssp, version)
    for part in env.services.catalog.partitions("revenue_final"):
        entry = freeze.read_ledger(s3, bucket, part.ssp, dt.date.fromisoformat(part.revenue_date))
        assert entry is not None and publish.version_of(part.location) == entry.version
        assert store.parquet_keys(s3, bucket, store.split_uri(part.location)[1])


def test_compaction_and_vacuum_change_no_answer_and_delete_only_what_no_reader_needs(
        lake_env: Lake, emulator: Any) -> None:
    env = lake_env
    last = build_history(env, emulator, runs=6)
    expected = everything(env)
    before = {t: files_of(env, t) for t in logs.COMPACTABLE}
    assert before["publish_log"] > 6

    with Readers(env, expected) as readers:
        done = maintenance.compact(env.services.s3, env.services.catalog, env.settings, last,
                                   everything=True)
    assert done and readers.reads and readers.problems == []
    after = {t: files_of(env, t) for t in logs.COMPACTABLE}
    partitions = {t: len(env.services.catalog.partitions(t)) for t in logs.COMPACTABLE}
    assert after == partitions, "one file per partition"
    assert everything(env) == expected

    # Within the reader grace period nothing goes.
    fresh = maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings, last, apply=False)
    assert fresh.doomed == []
    later = last + dt.timedelta(days=8)
    chosen = maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings, later, apply=False)
    kinds = {c.why for c in chosen.doomed}
    assert "superseded" in kinds and "compacted into the live generation" in kinds
    assert all(later - c.superseded_at >= env.settings.reader_grace for c in chosen.doomed)
    assert not any(c.prefix.startswith(("raw/", "ledger/", "quarantine/", "tables/revenue_final/",
                                        "tables/allocation_final/", "tables/revenue_adjustments/"))
                   for c in chosen.doomed)
    raw_before = env.keys("raw/")
    with Readers(env, expected) as readers:
        maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings, later, apply=True)
    assert readers.reads and readers.problems == []
    assert env.keys("raw/") == raw_before
    for candidate in chosen.doomed:
        assert env.keys(candidate.prefix) == []
    protected_exist(env)
    assert everything(env) == expected
    again = maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings, later, apply=False)
    assert again.doomed == []


def run_child(env: Lake, now: dt.datetime, journal: Path) -> subprocess.CompletedProcess[str]:
    spec = {"bucket": env.settings.bucket, "database": env.settings.glue_database,
            "region": env.settings.region, "endpoint": env.settings.aws_endpoint,
            "now": now.isoformat(), "grace_days": 7, "journal": str(journal)}
    return subprocess.run(  # nosec B603: this interpreter, a module of the test suite
        [sys.executable, "-m", "tests.reliability.upkeep_child", json.dumps(spec)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'include'}:{ROOT / 'plugins'}"},
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_a_kill_at_every_step_of_compaction_and_vacuum_converges(
        lake_env: Lake, emulator: Any, tmp_path: Path) -> None:
    env = lake_env
    last = build_history(env, emulator, runs=4)
    expected = everything(env)
    now = last + dt.timedelta(days=8)
    journal = tmp_path / "writes.txt"
    kills = 0
    for _ in range(400):
        done = run_child(env, now, journal)
        if done.returncode == 0:
            break
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        kills += 1
        assert everything(env) == expected, f"after a kill past {journal.read_text().splitlines()[-1]}"
    else:
        pytest.fail("no victim finished")
    steps = journal.read_text().splitlines()
    assert kills == len(steps) - 1, "one kill after each new write but the last"
    assert any(s.startswith("update_partition") for s in steps), "compaction's switches were reached"
    assert any(s.startswith("delete_objects") for s in steps), "vacuum's deletes were reached"
    # Converged: a further run finds nothing to do; nothing frozen or named was deleted.
    assert maintenance.compact(env.services.s3, env.services.catalog, env.settings, now, everything=True) == []
    left = maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings, now, apply=False,
                                   grace=dt.timedelta(days=7))
    assert left.doomed == []
    assert {t: files_of(env, t) for t in logs.COMPACTABLE} == {
        t: len(env.services.catalog.partitions(t)) for t in logs.COMPACTABLE}
    protected_exist(env)
    assert everything(env) == expected


def test_as_of_an_instant_answers_what_the_lake_said_then_through_compaction_and_vacuum(
        lake_env: Lake, emulator: Any) -> None:
    env = lake_env
    said: dict[dt.datetime, dict[str, list[tuple[Any, ...]]]] = {}
    summary = ("SELECT ssp, revenue_date, count(*), sum(revenue) FROM revenue GROUP BY 1, 2 ORDER BY 1, 2")
    for r in range(6):
        at = run_instant(FIRST + dt.timedelta(days=r))
        emulator.set_clock(at)
        run_ssp(env.config, [FIRST + dt.timedelta(days=d) for d in range(r + 1)], env.connector(),
                env.services)
        said[at] = {**everything(env), "summary": env.engine().query(summary).rows,
                    "open": env.engine().query("SELECT * FROM dates_open ORDER BY 1, 2").rows}
    last = max(said)
    maintenance.compact(env.services.s3, env.services.catalog, env.settings, last, everything=True)
    maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings,
                            last + dt.timedelta(days=1), apply=True)
    engine = env.engine()
    versions = {tuple(row) for at in said for row in said[at]["summary"]}
    assert len(versions) > len(said[last]["summary"]), "restatements: the past differs from now"
    for at, expected in said.items():
        got = {t: sorted(engine.query(f"SELECT * FROM {t}", as_of=at).rows, key=repr) for t in TABLES}
        for table in TABLES:
            assert got[table] == expected[table], (at, table)
        assert engine.query(summary, as_of=at).rows == expected["summary"]
        assert engine.query("SELECT * FROM dates_open ORDER BY 1, 2", as_of=at).rows == expected["open"]

    # Past the reader grace the superseded versions go, and the engine says so rather than answer short.
    maintenance.vacuum_lake(env.services.s3, env.services.catalog, env.settings,
                            last + dt.timedelta(days=30), apply=True)
    with pytest.raises(LookupError, match="vacuumed"):
        engine.query(summary, as_of=min(said))
    assert engine.query(summary, as_of=last).rows == said[last]["summary"]
