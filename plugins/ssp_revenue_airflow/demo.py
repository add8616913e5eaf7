"""``make demo``: a week of daily DAG runs on the simulated clock, then a query.

Brings the local stack up (and leaves it up), replays the last 7 revenue dates
through real ``dag.test()`` runs, prints revenue per date and SSP from
``ssp-revenue query``, and exits non-zero if any step failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from ssp_revenue_airflow import local

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--until", type=dt.date.fromisoformat, default=None,
                        help="last revenue date (default: yesterday in Tokyo)")
    parser.add_argument("--standalone", action="store_true",
                        help="run `airflow standalone` against the local stack instead")
    args = parser.parse_args(argv)

    local_dir = Path(os.environ.get("SSP_REVENUE_LOCAL_DIR", ".local")).resolve()
    from ssp_revenue import stack

    print("== starting the local stack (moto S3+Glue, SSP emulator)", flush=True)
    local_stack = stack.LocalStack(local_dir)
    state = local_stack.up()
    until = args.until or (
        dt.datetime.now(ZoneInfo("Asia/Tokyo")).date() - dt.timedelta(days=1)  # the demo's "today"
    )
    dates = [until - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
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

    from ssp_revenue import runtime
    from ssp_revenue.clock import EmulatorClock
    from ssp_revenue.query import LocalEngine
    from ssp_revenue.settings import Settings

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
    assert dag is not None

    failed = []
    for day in dates:
        started = time.monotonic()
        run = local.run_day(dag, day, clock)
        state_name = str(getattr(run, "state", "unknown"))
        print(f"== daily run for revenue date {day}: {state_name} "
              f"({time.monotonic() - started:.1f}s)", flush=True)
        if "success" not in state_name:
            failed.append(day)

    engine = LocalEngine(settings, services.catalog.glue, services.s3)
    print("\n== ssp-revenue query: revenue per date and SSP (final once frozen, 60 h after the date)")
    print(engine.query(SUMMARY_SQL).format())
    print("\n== restatements seen after the freeze (revenue_final never changes)")
    print(engine.query(ADJUSTMENTS_SQL).format())
    print(f"\nAlerts: {local_dir / 'alerts.jsonl'} (large restatements are alerted once per date)")
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


if __name__ == "__main__":
    sys.exit(main())
