"""``make demo``: a week of daily runs on the simulated clock, a monthly close, a report.

Brings the local stack up (and leaves it up), replays every scheduled run for the
last 7 revenue dates of the previous month and the first of this one through the
library (``ssp-revenue replay``: the DAGs' steps without a task process each),
makes the daily run for the second date of this month as a real DAG run
(``dag.test()``), so every date of the week is frozen and allocated, prints
revenue per date and SSP from ``ssp-revenue query``, closes the previous month
through the monthly DAG, reconciles the SSPs' monthly statements through the
statements DAG (which trues the closed month up and reissues it), writes the
latest issue's accounting CSV and HTML report under .local/, and exits non-zero
if any step failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ssp_revenue_airflow import local

# dag.test() runs the Execution API in process through fastapi's TestClient, whose import
# warns about its httpx dependency: nothing a demo user can act on.
warnings.filterwarnings("ignore", message=r".*Using `httpx` with `starlette\.testclient` is deprecated")

if TYPE_CHECKING:
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate.replay import ReplayReport
    from ssp_revenue.operate.runtime import Services

SUMMARY_SQL = (
    "SELECT revenue_date, ssp, status, count(*) AS rows, sum(impressions) AS impressions, "
    "sum(revenue) AS revenue, currency FROM revenue_status "
    "GROUP BY revenue_date, ssp, status, currency ORDER BY revenue_date, ssp"
)
ADJUSTMENTS_SQL = (
    "SELECT revenue_date, ssp, sequence, count(*) AS keys, sum(revenue_delta) AS revenue_delta, "
    "min(detected_at) AS detected_at FROM revenue_adjustments "
    "GROUP BY revenue_date, ssp, sequence ORDER BY revenue_date, ssp, sequence"
)

ALLOCATION_SQL = (
    "SELECT ssp, target, count(*) AS dates, sum(revenue_jpy) AS revenue_jpy FROM allocation_final "
    "GROUP BY ssp, target ORDER BY ssp, target"
)
STATEMENTS_SQL = (
    "SELECT ssp, month, currency, reported, paid, variance, variance_share, paid_jpy, status "
    "FROM statement_reconciliation ORDER BY ssp"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--days", type=int, default=7, help="revenue dates of the month to replay")
    parser.add_argument("--month", default=None,
                        help="YYYY-MM to replay the end of and close (default: last month in Tokyo)")
    parser.add_argument("--standalone", action="store_true",
                        help="run `airflow standalone` against the local stack instead")
    args = parser.parse_args(argv)

    local_dir = Path(os.environ.get("SSP_REVENUE_LOCAL_DIR", ".local")).resolve()
    from ssp_revenue.operate import stack

    print("== starting the local stack (moto S3+Glue, SSP emulator)", flush=True)
    local_stack = stack.LocalStack(local_dir)
    state = local_stack.up()
    from ssp_revenue.allocate.close import Month

    month = Month.parse(args.month) if args.month else Month.before(
        dt.datetime.now(ZoneInfo("Asia/Tokyo")).date())  # the demo's "today"
    # Two more daily runs after the month ends: its last date freezes 60 h after it starts.
    until = month.last + dt.timedelta(days=2)
    dates = [month.last - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    dates += [month.last + dt.timedelta(days=1), until]
    env = {**local.airflow_environment(local_dir), **local.stack_environment(local_stack.state_file)}
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # The demo's go-live is its first date; frozen dates keep being re-fetched for 5 days.
    env.setdefault("SSP_REVENUE_START_DATE", dates[0].isoformat())
    env.setdefault("SSP_REVENUE_ADJUSTMENT_DAYS", "5")
    env.setdefault("SSP_REVENUE_REFETCH_DAYS", "4")
    env.setdefault("SSP_REVENUE_ALERTS_LOG", str(local_dir / "alerts.jsonl"))
    os.environ.update(env)
    local.migrate_db(env)

    if args.standalone:
        airflow = Path(sys.executable).parent / "airflow"
        os.execve(str(airflow), [str(airflow), "standalone"], {**os.environ, **env})  # noqa: S606  # nosec B606

    from ssp_revenue.core.clock import EmulatorClock
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.operate import runtime
    from ssp_revenue.operate.query import LocalEngine

    settings = Settings.from_env()
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    clock = EmulatorClock(state["emulator_url"])

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(local.ROOT / "dags"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    dag = bag.get_dag("ssp_revenue_daily")
    monthly = bag.get_dag("ssp_revenue_monthly_close")
    statements_dag = bag.get_dag("ssp_revenue_statements")
    assert dag is not None and monthly is not None and statements_dag is not None
    plan_statements(state["emulator_url"], month, dates[0], settings)

    failed: list[dt.date] = []
    replayed = replay_before(dates[-1], settings, services)
    print(f"== ssp-revenue replay up to the last date's run: {replayed.summary()}", flush=True)
    if replayed.opened:
        failed += [dt.date.fromisoformat(n["revenue_date"]) for n in replayed.opened]
    started = time.monotonic()
    run = local.run_day(dag, dates[-1], clock)
    state_name = str(getattr(run, "state", "unknown"))
    print(f"== daily DAG run (dag.test) for revenue date {dates[-1]}: {state_name} "
          f"({time.monotonic() - started:.1f}s)", flush=True)
    if "success" not in state_name:
        failed.append(dates[-1])

    engine = LocalEngine(settings, services.catalog.glue, services.s3)
    print("\n== ssp-revenue query: revenue per date and SSP (final once frozen, 60 h after the date)")
    print(engine.query(SUMMARY_SQL).format())
    print("\n== restatements seen after the freeze (revenue_final never changes)")
    print(engine.query(ADJUSTMENTS_SQL).format())
    print("\n== allocation_final: frozen revenue split by the allocation rules, in whole yen")
    print(engine.query(ALLOCATION_SQL).format())

    close_at = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(9), tzinfo=ZoneInfo("Asia/Tokyo"))
    clock.set(close_at.astimezone(dt.UTC))
    run = monthly.test(logical_date=close_at, run_after=close_at)
    print(f"\n== monthly close of {month} (DAG ssp_revenue_monthly_close): {run.state}")
    if "success" not in str(run.state):
        failed.append(month.last)
    # An hour later the statements run: the SSPs issued their statements on the 2nd; the month,
    # closed on frozen figures, is trued up to what they pay and reissued.
    statements_at = close_at + dt.timedelta(hours=1)
    clock.set(statements_at.astimezone(dt.UTC))
    run = statements_dag.test(logical_date=statements_at, run_after=statements_at)
    print(f"\n== monthly statements (DAG ssp_revenue_statements): {run.state}")
    if "success" not in str(run.state):
        failed.append(month.last)
    print(engine.query(STATEMENTS_SQL).format())
    from ssp_revenue.allocate import close

    numbers = close.issues(services.s3, settings.bucket, month)
    if numbers:
        body, manifest = close.read_issue(services.s3, settings.bucket, month, numbers[-1])
        out = local_dir / "closes"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"accounting-{month}.csv").write_bytes(body)
        page = services.s3.get_object(Bucket=settings.bucket,
                                      Key=close.issue_key(month, numbers[-1], f"revenue-{month}.html"))
        report = local_dir / "reports" / f"revenue-{month}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_bytes(page["Body"].read())
        print(body.decode())
        print(f"manifest: {manifest['row_count']} rows, total {manifest['totals_jpy']['total_jpy']:,} JPY, "
              f"sha256 {manifest['sha256']}")
        print(f"accounting CSV: {out / f'accounting-{month}.csv'}")
        print(f"HTML report (open it in a browser): {report}")
    from ssp_revenue.core import registry as ssp_registry
    from ssp_revenue.operate import status

    print("\n== ssp-revenue status: what an operator sees")
    ssps = ssp_registry.load_registry(settings.config_dir / "ssps.yaml")
    print(status.render(engine, clock.now(), ssps, settings))
    print(f"\nNotices (incidents opened and resolved): {local_dir / 'alerts.jsonl'}")
    print(
        "\nThe stack is still up. Query more with, for example:\n"
        '  .venv/bin/ssp-revenue query "SELECT * FROM publish_log ORDER BY fetched_at"\n'
        "Stop it with: make down"
    )
    if failed:
        print(f"\nFAILED runs for: {', '.join(map(str, failed))} "
              f"(logs under {local_dir / 'airflow' / 'logs'})", file=sys.stderr)
        return 1
    return 0


def plan_statements(emulator_url: str, month: Any, first: dt.date, settings: Settings) -> None:
    """The demo's go-live is within the month: each SSP's statement pays for its days since."""
    import requests

    from ssp_revenue.core import registry as ssp_registry

    variants = {"xchange": "fx", "dropzone": "late_deduction"}
    for config in ssp_registry.load_registry(settings.config_dir / "ssps.yaml"):
        if config.statement is not None:
            requests.post(f"{emulator_url}/_control/statements", timeout=10, json={
                "ssp": config.name, "month": str(month), "variant": variants.get(config.name, "ivt"),
                "params": {"since": first.isoformat()}}).raise_for_status()


def replay_before(last: dt.date, settings: Settings, services: Services) -> ReplayReport:
    """Every run the schedules make up to the last date's daily run, through the library
    (``ssp-revenue replay``: the same steps as the DAGs' tasks, without a task process
    per step), printing the daily runs and any incident."""
    from ssp_revenue.core import calendar, registry
    from ssp_revenue.operate import replay, runtime

    replaying = runtime.services_for(settings.replace(clock="replay"), s3=services.s3,
                                     glue=services.catalog.glue)
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    assert settings.start_date is not None  # the demo's go-live, set in main()
    start = calendar.run_due(settings.start_date, settings.tz)

    def echo(line: str) -> None:
        if " daily " in line or "\n" in line:
            print("   " + line.replace("\n", "\n   "), flush=True)

    return replay.replay(
        start, calendar.run_due(last, settings.tz), services=replaying, ssps=ssps,
        connectors=runtime.connectors_from_env(replaying), echo=echo)


if __name__ == "__main__":
    sys.exit(main())
