"""``ssp-revenue``: every step runnable outside Airflow, with the same result."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path

from ssp_revenue import calendar, credentials, registry, runtime, stack
from ssp_revenue.connectors import connector_class
from ssp_revenue.outcomes import ActionableFailure
from ssp_revenue.pipeline import raise_if_actionable, run_ssp
from ssp_revenue.query import engine_for
from ssp_revenue.settings import Settings


def load_settings() -> Settings:
    """Settings from the environment; against the local stack when it is up."""
    local = Path(os.environ.get("SSP_REVENUE_LOCAL_DIR", ".local"))
    stack_file = local / "stack.json"
    if "SSP_REVENUE_STACK_FILE" not in os.environ and stack_file.exists():
        os.environ["SSP_REVENUE_STACK_FILE"] = str(stack_file)
    if os.environ.get("SSP_REVENUE_STACK_FILE"):
        for key, value in stack.LOCAL_AWS_ENV.items():
            os.environ.setdefault(key, value)
    return Settings.from_env()


def cmd_stack(args: argparse.Namespace) -> int:
    local = stack.LocalStack(Path(os.environ.get("SSP_REVENUE_LOCAL_DIR", ".local")))
    if args.action == "up":
        state = local.up()
        os.environ["SSP_REVENUE_STACK_FILE"] = str(local.state_file)
        runtime.bootstrap(runtime.services_for(load_settings()))
        print(json.dumps({k: v for k, v in state.items() if k != "pids"}, indent=2))
    elif args.action == "down":
        local.down()
        print("stack stopped")
    else:
        status = local.status()
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 3
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    settings = load_settings()
    services = runtime.services_for(settings)
    engine = engine_for(settings, glue=services.catalog.glue, s3=services.s3)
    print(engine.query(args.sql).format())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Fetch, validate and publish one SSP (or all) for a date range, in this process."""
    settings = load_settings()
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    if args.ssp:
        ssps = [registry.find(ssps, args.ssp)]
    if args.date:
        first = dt.date.fromisoformat(args.date)
        last = dt.date.fromisoformat(args.to) if args.to else first
        dates = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    else:
        anchor = calendar.anchor_date(services.clock.now(), None, settings.tz)
        dates = calendar.dates_due(anchor, settings.refetch_days, settings.adjustment_days,
                                   settings.start_date)
    failed = False
    for config in ssps:
        connector = connector_class(config.style)(
            config, credentials.from_env(config.name, settings), clock=services.clock,
            business_tz=settings.business_tz,
        )
        job = run_ssp(config, dates, connector, services)
        for outcome in job["outcomes"]:
            print(f"{outcome['step']:9} {outcome['ssp']} {outcome['revenue_date']} "
                  f"[{outcome['severity']}] {outcome['detail']}")
        try:
            raise_if_actionable(job, services)
        except ActionableFailure as exc:
            print(str(exc), file=sys.stderr)
            failed = True
    return 1 if failed else 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from ssp_revenue.emulator.server import serve

    serve(args.port, args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssp-revenue", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="start/stop the local moto + emulator stack")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("query", help="run Athena-dialect SQL (DuckDB locally, Athena in AWS)")
    p.add_argument("sql")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("run", help="fetch -> validate -> publish outside Airflow")
    p.add_argument("--ssp")
    p.add_argument("--date", help="first revenue date (default: the due window)")
    p.add_argument("--to", help="last revenue date, inclusive")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("emulator", help="the SSP emulator alone")
    p.add_argument("action", choices=["serve"])
    p.add_argument("--port", type=int, default=8790)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_emulator)
    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=os.environ.get("SSP_REVENUE_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
