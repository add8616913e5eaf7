"""The backfill through the production topology: ``airflow backfill create`` under the real
scheduler, LocalExecutor and CeleryExecutor, against the same dates through dag.test().

Each executor gets a fresh topology (PostgreSQL, Redis, api-server, scheduler,
dag-processor, triggerer, and a Celery worker for Celery) with the backfill
benchmark's four SSPs at N rows a day. The first date runs as the DAG's one
scheduled catchup run; the rest is one ``airflow backfill create`` over the
following dates. The daily DAG allows one active run (each run re-fetches the
dates before it, and a freeze must see them in order), so the parallelism is
within a run: the four SSPs' task groups run side by side as the executor's
slots allow. Afterwards the same dates run through dag.test() in this process on
a lake of its own, on the same stack and simulated instants, and the two lakes
are compared partition by partition (versions, ledger): they must be identical.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks import cpu_account
from benchmarks.backfill import SSPS, four_ssp_config
from benchmarks.common import write_table
from benchmarks.session import post, rows_per_day

LOCAL = Path(".local") / "bench-backfill-topology"
FIRST = dt.date(2026, 6, 1)
TOKYO = ZoneInfo("Asia/Tokyo")
DAILY = "ssp_revenue_daily"


def _pipeline_env(bucket: str, config_dir: Path, refetch_days: int, adjustment_days: int) -> dict[str, str]:
    return {"SSP_REVENUE_BUCKET": bucket, "SSP_REVENUE_GLUE_DATABASE": bucket.replace("-", "_"),
            "SSP_REVENUE_START_DATE": FIRST.isoformat(), "SSP_REVENUE_CONFIG_DIR": str(config_dir.resolve()),
            "SSP_REVENUE_REFETCH_DAYS": str(refetch_days),
            "SSP_REVENUE_ADJUSTMENT_DAYS": str(adjustment_days)}


def _profiles(emulator_url: str, rows: int) -> None:
    for ssp in SSPS:
        # The emulator's request-rate limit is switched off: it would time its windows, not us.
        post(emulator_url + "/_control/profile",
             {"ssp": ssp, "rows": rows_per_day(ssp, rows), "rate_limit_per_window": 0})


def _task_seconds(topology: Any) -> dict[str, tuple[float, float, int]]:
    """Per task: total and median seconds of its task processes, and how many ran."""
    rows = topology.sql("SELECT task_id, extract(epoch FROM end_date - start_date) FROM task_instance "
                        "WHERE dag_id = %s AND end_date IS NOT NULL", DAILY)
    spent: dict[str, list[float]] = {}
    for task, seconds in rows:
        spent.setdefault(task, []).append(float(seconds))
    return {t: (sum(v), statistics.median(v), len(v)) for t, v in sorted(spent.items())}


def _busy_seconds(topology: Any) -> float:
    """Seconds in which at least one task process of the daily DAG was running."""
    spans = sorted(topology.sql("SELECT start_date, end_date FROM task_instance WHERE dag_id = %s "
                                "AND start_date IS NOT NULL AND end_date IS NOT NULL", DAILY))
    busy, reach = 0.0, None
    for start, end in spans:
        if reach is None or start > reach:
            busy += (end - start).total_seconds()
            reach = end
        elif end > reach:
            busy += (end - reach).total_seconds()
            reach = end
    return busy


def _xcom(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _library(topology: Any) -> dict[str, dict[str, Any]]:
    """Per run: the seconds our code ran on the run's critical path, from the jobs' XCom.

    Each task records its body's seconds in the job it returns (``tasks._timed``);
    the last task of an SSP's group holds the group's. The critical path is the
    plan plus the slowest group: a run cannot end sooner than our code on it does.
    """
    rows = topology.sql("SELECT run_id, task_id, value FROM xcom WHERE dag_id = %s AND key = 'return_value' "
                        "AND task_id IN ('plan', 'per_ssp.load')", DAILY)
    out: dict[str, dict[str, Any]] = {}
    for run_id, task_id, value in rows:
        run = out.setdefault(run_id, {"plan": 0.0, "groups": []})
        jobs = _xcom(value)
        if task_id == "plan":
            run["plan"] = max((j.get("seconds", {}).get("plan", 0.0) for j in jobs), default=0.0)
        else:
            seconds = jobs.get("seconds", {})
            run["groups"].append(sum(v for k, v in seconds.items() if k != "plan"))
    for run in out.values():
        run["critical"] = run["plan"] + max(run["groups"], default=0.0)
        run["total"] = run["plan"] + sum(run["groups"])
    return out


CHAIN = ("plan", "per_ssp.ingest", "per_ssp.load")


def _task_cpu(topology: Any) -> dict[str, dict[str, float]]:
    """Per task: the CPU seconds of its task processes (sum over the backfill) before their
    body (start-up since the fork: imports, the DAG file, the runtime's own set-up) and in it,
    as each task records them in the job it returns (``tasks._timed``)."""
    rows = topology.sql("SELECT task_id, value FROM xcom WHERE dag_id = %s AND key = 'return_value' "
                        "AND task_id IN ('plan', 'per_ssp.ingest', 'per_ssp.load')", DAILY)
    out: dict[str, dict[str, float]] = {}
    for task_id, value in rows:
        step = task_id.split(".")[-1]
        jobs = _xcom(value)
        job = jobs[0] if isinstance(jobs, list) and jobs else jobs
        recorded = (job or {}).get("cpu", {}) if isinstance(job, dict) else {}
        cpu = recorded.get(step)
        if cpu is None:
            continue
        spent = out.setdefault(step, {"before": 0.0, "body": 0.0, "tasks": 0})
        spent["before"] += float(cpu["before"])
        spent["body"] += float(cpu["body"])
        spent["tasks"] += 1
    return out


def _handoffs(topology: Any) -> dict[str, float]:
    """Median seconds of each hand-off from a task to the next one of its SSP's chain.

    ``noticed``: from the upstream's end until the scheduler queues the next task;
    ``dispatched``: from queued until its task process starts (executor, worker, fork).
    """
    rows = topology.sql("SELECT run_id, task_id, map_index, queued_dttm, start_date, end_date "
                        "FROM task_instance WHERE dag_id = %s AND end_date IS NOT NULL "
                        "AND queued_dttm IS NOT NULL", DAILY)
    by: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {
        (r, t, m): (q, st, e) for r, t, m, q, st, e in rows}
    noticed, dispatched = [], []
    for (run, task, index), (queued, start, _) in by.items():
        if task not in CHAIN or task == "plan":
            continue
        upstream = CHAIN[CHAIN.index(task) - 1]
        before = by.get((run, upstream, -1 if upstream == "plan" else index))
        if before is None:
            continue
        noticed.append((queued - before[2]).total_seconds())
        dispatched.append((start - queued).total_seconds())
    return {"noticed": statistics.median(noticed) if noticed else 0.0,
            "dispatched": statistics.median(dispatched) if dispatched else 0.0}


def _lingering(topology: Any) -> dict[str, float]:
    """How long each task's supervisor (and so its executor slot) outlived the task: from the task
    instance's end in the metadata DB to the supervisor's "Workload finished" line in the
    executor's log (the Celery worker's, or the scheduler's for the LocalExecutor).

    Airflow's supervisor notices its task process's exit by EOF on its sockets, then checks the
    exit with a zero timeout; a process still tearing down is only seen at the next wake-up,
    ``[workers] min_heartbeat_interval`` (5 s) later, and the Celery slot stays taken meanwhile.
    """
    import re

    ended = {str(ti_id): end for ti_id, end in topology.sql(
        "SELECT id, end_date FROM task_instance WHERE dag_id = %s AND end_date IS NOT NULL", DAILY)}
    pattern = re.compile(r"^(\S+Z) .*Workload finished .*workload_id=([0-9a-f-]+)")
    lags: list[float] = []
    for name in ("worker.log", "scheduler.log"):
        path = topology.log_dir / name
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            found = pattern.search(line)
            if found and found.group(2) in ended:
                finished = dt.datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
                lags.append((finished - ended[found.group(2)]).total_seconds())
    if not lags:
        return {}
    return {LINGER[0]: statistics.median(lags), LINGER[1]: sum(lag > 1 for lag in lags) / len(lags),
            LINGER[2]: sum(lags) / len(lags)}


LINGER = ("task end -> its supervisor exits (its executor slot free again), median",
          "tasks whose supervisor outlived them by over 1 s (share)",
          "task end -> its supervisor exits, mean")


TIMELINE = ("run start -> plan starts", "plan (task process)", "plan end -> its ingest starts",
            "ingest (task process)", "ingest end -> its load starts", "load (task process)",
            "load end -> run end", "run end -> next run starts", "first to last ingest start",
            "first to last ingest queued")
NO_PLAN = "run start -> its ingest starts"  # the DAG without a plan task: its ingests plan


def _timeline(topology: Any, runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds of each phase of a run along its last SSP chain to end (the one the run
    waited for), from the metadata DB's timestamps: the scheduler's noticing, queueing and the
    run's own start and end between our task processes. The phases of a run add up to its wall."""
    rows = topology.sql("SELECT run_id, task_id, map_index, start_date, end_date, queued_dttm "
                        "FROM task_instance WHERE dag_id = %s AND start_date IS NOT NULL "
                        "AND end_date IS NOT NULL", DAILY)
    spans: dict[str, dict[tuple[str, int], tuple[Any, Any]]] = {}
    queued: dict[str, list[Any]] = {}
    for run_id, task, index, start, end, queued_at in rows:
        spans.setdefault(run_id, {})[(task, index)] = (start, end)
        if task == CHAIN[1] and queued_at is not None:
            queued.setdefault(run_id, []).append(queued_at)
    ordered = sorted(runs, key=lambda r: r["start_date"])
    phases: dict[str, list[float]] = {name: [] for name in (NO_PLAN, *TIMELINE)}
    for n, run in enumerate(ordered):
        tasks = spans.get(run["run_id"], {})
        loads = {index: span for (task, index), span in tasks.items() if task == CHAIN[2]}
        if not loads:
            continue
        last = max(loads, key=lambda index: loads[index][1])
        if (CHAIN[1], last) not in tasks:
            continue
        ingest, load = tasks[(CHAIN[1], last)], loads[last]
        names: tuple[str, ...]
        if ("plan", -1) in tasks:
            plan = tasks[("plan", -1)]
            names = TIMELINE[:-3]
            marks = [run["start_date"], plan[0], plan[1], ingest[0], ingest[1], load[0], load[1],
                     run["end_date"]]
        else:
            names = (NO_PLAN, *TIMELINE[3:-3])
            marks = [run["start_date"], ingest[0], ingest[1], load[0], load[1], run["end_date"]]
        for name, (a, b) in zip(names, itertools.pairwise(marks), strict=True):
            phases[name].append((b - a).total_seconds())
        if n + 1 < len(ordered):
            phases[TIMELINE[-3]].append((ordered[n + 1]["start_date"] - run["end_date"]).total_seconds())
        starts = [span[0] for (task, _), span in tasks.items() if task == CHAIN[1]]
        phases[TIMELINE[-2]].append((max(starts) - min(starts)).total_seconds())
        if ingests_queued := queued.get(run["run_id"]):
            phases[TIMELINE[-1]].append((max(ingests_queued) - min(ingests_queued)).total_seconds())
    return {name: statistics.median(v) for name, v in phases.items() if v}


def _timeline_table(results: dict[str, dict[str, Any]]) -> str:
    head = "| median s of a run | " + " | ".join(results) + " |"
    lines = ["", "", "Where a run's wall went, along the SSP chain the run waited for (medians over the "
             "runs, the metadata DB's timestamps; the other SSPs' tasks run side by side with it):", "", head,
             "|---|" + "---|" * len(results)]
    for name in (NO_PLAN, *TIMELINE, *LINGER):
        if not any(name in r["timeline"] for r in results.values()):
            continue
        form = ".0%" if name == LINGER[1] else ".2f"
        lines.append(f"| {name} | " + " | ".join(
            format(r["timeline"].get(name, 0.0), form) for r in results.values()) + " |")
    return "\n".join(lines)


def _cpu_table(results: dict[str, dict[str, Any]], dates: int) -> str:
    """CPU seconds per run by process tree, each executor side by side."""
    names: list[str] = []
    for result in results.values():
        names += [n for n in result["cpu"] if n not in names]
    head = "| CPU s per run | " + " | ".join(results) + " |"
    lines = ["", "", "Where the CPU went (CPU seconds per run, from unpausing to the last run's end; "
             "a tree's children are its descendants: Celery's task processes under the worker, "
             "LocalExecutor's under the scheduler, PostgreSQL's backends under the postmaster; "
             f"capacity: {_cores()} cores x the run's wall):", "", head,
             "|---|" + "---|" * len(results)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            f"{r['cpu'].get(name, 0.0) / dates:.2f}" for r in results.values()) + " |")
    lines.append("| capacity (cores x wall) | " + " | ".join(
        f"{_cores() * r['wall'] / dates:.2f}" for r in results.values()) + " |")
    return "\n".join(lines)


def _task_cpu_table(results: dict[str, dict[str, Any]], dates: int) -> str:
    """The task processes' CPU per run, split into start-up and body, beside the worker tree's."""
    head = "| CPU s per run | " + " | ".join(results) + " |"
    lines = ["", "", "The task processes' own CPU (CPU seconds per run; each task process measures its "
             "start-up since the fork and its body, and returns them in its job; the rest of the "
             "executor's tree is Airflow's supervisor processes and the executor's pool):", "",
             head, "|---|" + "---|" * len(results)]
    steps: list[str] = []
    for result in results.values():
        steps += [step for step in result.get("task_cpu", {}) if step not in steps]
    for step in steps:
        for part in ("before", "body"):
            label = f"{step}: start-up (before its body)" if part == "before" else f"{step}: body (ours)"
            lines.append(f"| {label} | " + " | ".join(
                f"{r.get('task_cpu', {}).get(step, {}).get(part, 0.0) / dates:.2f}" for r in results.values())
                + " |")
    lines.append("| task processes, all | " + " | ".join(
        f"{sum(v['before'] + v['body'] for v in r.get('task_cpu', {}).values()) / dates:.2f}"
        for r in results.values()) + " |")
    return "\n".join(lines)


def _cores() -> int:
    import os

    return os.cpu_count() or 1


def _floor(topology: Any) -> float:
    """Mean seconds of an empty task under the same topology: what any task costs before our code."""
    from benchmarks.scheduler_runs import floor_dag_seconds

    return floor_dag_seconds(topology)


def through_topology(executor: str, days: list[dt.date], rows: int, config_dir: Path, refetch_days: int,
                     adjustment_days: int, settings_env: dict[str, str] | None = None) -> dict[str, Any]:
    from ssp_revenue.core import calendar
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import runtime
    from ssp_revenue_airflow import local
    from ssp_revenue_airflow.topology import AirflowTopology

    base = LOCAL / (executor + ("-variant" if settings_env else ""))
    bucket = f"bt-{uuid.uuid4().hex[:10]}"
    env = {**_pipeline_env(bucket, config_dir, refetch_days, adjustment_days),
           "SSP_REVENUE_CLOCK": "replay", "SSP_REVENUE_CATCHUP": "true",
           "SSP_REVENUE_END_DATE": days[0].isoformat(),  # one scheduled run; the backfill does the rest
           **(settings_env or {})}
    from benchmarks.scheduler_runs import dags_with_floor

    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_with_floor(base / "dags").resolve())
    topology = AirflowTopology(base, executor=executor, extra_env=env)
    topology.up(fresh=True)
    try:
        stack_file = base / "stack.json"
        stack_env = local.stack_environment(stack_file)
        emulator_url = str(json.loads(stack_file.read_text())["emulator_url"])
        _profiles(emulator_url, rows)
        post(emulator_url + "/_control/clock",
             {"now": calendar.run_logical_date(days[0], TOKYO).isoformat()})
        topology.wait_for_dag(DAILY, seconds=300)
        state = topology.read() or {}
        roots = {**{str(k): int(v) for k, v in state.get("pids", {}).items()},
                 **{str(k): int(v) for k, v in json.loads(stack_file.read_text()).get("pids", {}).items()}}
        cpu_before = cpu_account.sample(roots)
        started = time.monotonic()
        topology.airflow("dags", "unpause", DAILY)
        topology.wait_for_runs(DAILY, 1, seconds=1800)
        if len(days) > 1:
            def at_six(day: dt.date) -> str:
                return dt.datetime.combine(day, calendar.RUN_TIME, tzinfo=TOKYO).isoformat()

            topology.airflow("backfill", "create", "--dag-id", DAILY, "--from-date", at_six(days[1]),
                             "--to-date", at_six(days[-1]), "--max-active-runs", "1")
        runs = topology.wait_for_runs(DAILY, len(days), seconds=6 * 3600)
        wall = time.monotonic() - started
        cpu = cpu_account.spent(cpu_before, cpu_account.sample(roots))
        tasks = _task_seconds(topology)
        busy = _busy_seconds(topology)
        library = _library(topology)
        handoffs = _handoffs(topology)
        task_cpu = _task_cpu(topology)
        timeline = {**_timeline(topology, runs), **_lingering(topology)}
        run_walls = {r["run_id"]: (r["end_date"] - r["start_date"]).total_seconds() for r in runs}
        floor = _floor(topology)
        settings = Settings.from_env({**stack_env, **env})
        snapshot = local.lake_snapshot(runtime.services_for(settings))
    finally:
        topology.down()
    return {"wall": wall, "runs": [(r["end_date"] - r["start_date"]).total_seconds() for r in runs],
            "states": [r["state"] for r in runs], "types": [r["run_type"] for r in runs],
            "tasks": tasks, "busy": busy, "snapshot": snapshot, "stack": base, "env": env,
            "library": library, "run_walls": run_walls, "floor": floor, "handoffs": handoffs, "cpu": cpu,
            "task_cpu": task_cpu,
            "timeline": timeline}


def through_dag_test(stack_dir: Path, days: list[dt.date], rows: int, config_dir: Path, refetch_days: int,
                     adjustment_days: int) -> dict[str, Any]:
    """The same dates through dag.test() on the given (still running) stack, another bucket."""
    import os

    from ssp_revenue.core.clock import EmulatorClock
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import runtime, stack
    from ssp_revenue_airflow import local

    local_stack = stack.LocalStack(stack_dir)
    state = local_stack.up()
    try:
        env = {**local.airflow_environment(stack_dir / "dag-test"),
               **local.stack_environment(local_stack.state_file),
               **_pipeline_env(f"bd-{uuid.uuid4().hex[:10]}", config_dir, refetch_days, adjustment_days),
               "SSP_REVENUE_ALERTS_LOG": str((stack_dir / "alerts.jsonl").resolve()),
               "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
        os.environ.update(env)
        _profiles(state["emulator_url"], rows)
        local.migrate_db(env)
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(local.ROOT / "dags")).get_dag(DAILY)
        clock = EmulatorClock(state["emulator_url"])
        walls = []
        started = time.monotonic()
        for day in days:
            run_started = time.monotonic()
            run = local.run_day(dag, day, clock)
            walls.append(time.monotonic() - run_started)
            assert "success" in str(run.state), (day, run.state)
        wall = time.monotonic() - started
        snapshot = local.lake_snapshot(runtime.services_for(Settings.from_env(dict(os.environ))))
    finally:
        local_stack.down()
    return {"wall": wall, "runs": walls, "snapshot": snapshot}


def differences(ours: dict[str, Any], reference: dict[str, Any], limit: int = 5) -> list[str]:
    """What differs between two lake snapshots, part by part, a few examples each."""
    out = []
    for part in sorted(set(ours) | set(reference)):
        mine, theirs = ours.get(part, {}), reference.get(part, {})
        if part == "tables":
            for table in sorted(set(mine) | set(theirs)):
                a, b = mine.get(table, {}), theirs.get(table, {})
                keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                out += [f"{table} {k}: {a.get(k)} vs {b.get(k)}" for k in keys[:limit]]
        else:
            keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            out += [f"{part} {k}" for k in keys[:limit]]
    return out


def main(dates: int, rows: int, refetch_days: int, adjustment_days: int,
         executors: tuple[str, ...] = ("LocalExecutor", "CeleryExecutor"),
         variant: dict[str, str] | None = None) -> str:
    """``variant``: Airflow settings for one more pass of the last executor, after the others."""
    days = [FIRST + dt.timedelta(days=n) for n in range(dates)]
    import os

    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import stack

    os.environ.update(stack.LOCAL_AWS_ENV)  # this process reads the lakes with the stack's keys
    config_dir = four_ssp_config(Settings.from_env({}).config_dir)  # every pass reads the same registry
    passes: list[tuple[str, str, dict[str, str] | None]] = [(e, e, None) for e in executors]
    if variant:
        passes.append((executors[-1] + " with " + ", ".join(f"`{k}={v}`" for k, v in variant.items()),
                       executors[-1], variant))
    results = {}
    for n, (name, executor, settings_env) in enumerate(passes):
        results[name] = through_topology(executor, days, rows, config_dir, refetch_days, adjustment_days,
                                         settings_env)
        if n != len(passes) - 1:
            stack.LocalStack(results[name]["stack"]).down()
    baseline = through_dag_test(results[passes[-1][0]]["stack"], days, rows, config_dir, refetch_days,
                                adjustment_days)
    table = []
    differing = []
    for name, result in results.items():
        same = result["snapshot"] == baseline["snapshot"]
        if not same:
            differing += [f"{name}: {line}" for line in differences(result["snapshot"], baseline["snapshot"])]
        tasks = result["tasks"]
        library, walls = result["library"], result["run_walls"]
        shares = [1 - library[r]["critical"] / w for r, w in walls.items() if r in library and w > 0]
        ours = [library[r]["critical"] for r in walls if r in library]
        table.append([
            f"{name}: `airflow backfill create` (1 scheduled + {dates - 1} backfill runs)",
            f"{result['wall']:.0f}", f"{statistics.median(result['runs']):.1f}",
            f"{result['busy']:.0f} ({result['busy'] / result['wall']:.0%})",
            f"{sum(t[0] for t in tasks.values()):.0f}",
            "; ".join(f"{t.split('.')[-1]} {median:.1f}" for t, (_, median, _) in tasks.items()),
            f"{sum(r['total'] for r in library.values()):.0f}",
            f"{statistics.median(ours):.1f}" if ours else "",
            f"{statistics.median(shares):.0%}" if shares else "",
            f"{result['floor']:.2f}",
            f"{result['handoffs']['noticed']:.2f} + {result['handoffs']['dispatched']:.2f}",
            ("identical" if same else "DIFFERENT")
            + ("" if all(s == "success" for s in result["states"]) else f", states {set(result['states'])}"),
        ])
    table.append(["dag.test(), one process, SQLite (same dates, same instants)", f"{baseline['wall']:.0f}",
                  f"{statistics.median(baseline['runs']):.1f}", "", "", "", "", "", "", "",
                  "(the reference)"])
    notes = (
        f"{dates} revenue dates from {FIRST} x {len(SSPS)} SSPs ({', '.join(SSPS)}) at {rows:,} report "
        f"rows a day, refetch {refetch_days} days and adjustments {adjustment_days} days (each run "
        "re-fetches its due window). Wall: from unpausing the DAG to the last run's end. "
        "Busy: seconds in which at least one task process ran (the rest is the scheduler's gaps "
        "between tasks and runs). "
        "Task seconds: the sum of every task process, start to end, as the metadata DB records it. "
        "Ours: the seconds the task bodies ran (settings, clients, Connections, the library), which "
        "each task records in the job it returns (XCom); on the critical path: the plan plus the "
        "slowest SSP group of the run. Airflow's share of a run: 1 - ours on the critical path / "
        "the run's wall (the rest is task start-up and the scheduler's gaps). Empty task: the mean "
        "of 5 tasks that do nothing (`bench_floor`) in the same topology, run after the backfill. "
        "Hand-off: from a task's end until the scheduler queues the next task of its SSP's chain, "
        "plus from queued until that task process starts (the metadata DB's timestamps). "
        "Lake: the backfilled lake against the dag.test() lake, partition versions and ledger entries. "
        f"Reproduce: `make bench ARGS='--only backfill-topology --backfill-dates {dates} "
        f"--backfill-rows {rows}'`."
    ) + _cpu_table(results, dates) + _task_cpu_table(results, dates) + _timeline_table(results) + (
        "".join(f"\n\n- {line}" for line in differing) if differing else "")
    return write_table(
        "backfill_topology",
        f"Backfill through the real topology: {dates} dates x {len(SSPS)} SSPs at {rows:,} rows",
        ["harness", "wall s", "median run s", "busy s", "task s (sum)", "median task s",
         "ours s (sum)", "ours on the critical path, median run s", "Airflow's share, median run",
         "empty task s", "hand-off s (queued + started), median", "lake"],
        table, notes)
