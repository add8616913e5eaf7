"""``make bench``: run the benchmarks and write each table under benchmarks/results/."""

from __future__ import annotations

import argparse
import sys

from benchmarks import (
    backfill,
    backfill_topology,
    lake_growth,
    parse_styles,
    pipeline_day,
    publish_side_by_side,
    query_month,
    scheduler_runs,
    session,
    streaming_day,
    validation,
)

BENCHMARKS = ("pipeline_day", "publish", "validation", "query", "backfill", "backfill-topology", "scheduler",
              "growth", "streaming", "parse")


EXECUTORS = ("LocalExecutor", "CeleryExecutor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    parser.add_argument("--query-rows", type=int, default=100_000)
    parser.add_argument("--backfill-dates", type=int, default=90)
    parser.add_argument("--backfill-rows", type=int, default=50_000)
    # 3 is the narrowest refetch window in which every date is still re-fetched after its
    # 60-hour cutoff (the run anchored at D+2 starts D+3 06:00), so every date freezes.
    parser.add_argument("--refetch-days", type=int, default=3)
    parser.add_argument("--adjustment-days", type=int, default=2)
    parser.add_argument("--library-pass", action="store_true",
                        help="backfill: also run the same steps through the library alone (doubles the time)")
    parser.add_argument("--executor", action="append", choices=EXECUTORS,
                        help="backfill-topology: only this executor (repeatable)")
    parser.add_argument("--airflow-setting", action="append", default=[], metavar="AIRFLOW__S__K=V",
                        help="backfill-topology: also run the last executor with this Airflow "
                             "setting, side by side in the same run (repeatable: one variant)")
    parser.add_argument("--parse-rows", type=int, default=50_000,
                        help="parse: report rows of the jp_csv and rest_json reports read")
    parser.add_argument("--growth-days", type=int, default=365,
                        help="growth: the simulated span (production windows)")
    parser.add_argument("--growth-rows", type=int, default=200, help="growth: emulator rows per SSP-day")
    parser.add_argument("--growth-ssps", default=",".join(lake_growth.SSPS),
                        help="growth: the SSPs replayed, comma-separated (default: all five)")
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    if "growth" in chosen:  # its own stack: a lake of its own
        print(lake_growth.main(args.growth_days, args.growth_rows, tuple(args.growth_ssps.split(","))))
        chosen = [c for c in chosen if c != "growth"]
        if not chosen:
            return 0
    if "streaming" in chosen:  # one process per measured day, a stack of its own
        print(streaming_day.main())
        chosen = [c for c in chosen if c != "streaming"]
        if not chosen:
            return 0
    if "parse" in chosen:  # an emulator of its own, in this process
        print(parse_styles.main(args.parse_rows, args.runs))
        chosen = [c for c in chosen if c != "parse"]
        if not chosen:
            return 0
    if "backfill-topology" in chosen:  # its own topologies and stack
        print(backfill_topology.main(args.backfill_dates, args.backfill_rows, args.refetch_days,
                                     args.adjustment_days, tuple(args.executor or EXECUTORS),
                                     dict(kv.split("=", 1) for kv in args.airflow_setting)))
        chosen = [c for c in chosen if c != "backfill-topology"]
        if not chosen:
            return 0
    if chosen == ["scheduler"]:  # its own topologies and stack; no benchmark session needed
        print(scheduler_runs.main())
        return 0
    opened, local_stack = session.open_session(args.rows)
    try:
        if "pipeline_day" in chosen:
            print(pipeline_day.main(opened, args.runs))
        if "publish" in chosen:
            print(publish_side_by_side.main(opened, args.runs))
        if "validation" in chosen:
            print(validation.main(opened, args.runs))
        if "query" in chosen:
            print(query_month.main(opened, args.query_rows, args.runs))
        if "backfill" in chosen:
            print(backfill.main(opened, args.backfill_dates, args.backfill_rows, args.refetch_days,
                                args.adjustment_days, library_pass=args.library_pass))
        if "scheduler" in chosen:
            print(scheduler_runs.main())
    finally:
        local_stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
