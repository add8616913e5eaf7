"""``ssp-revenue``: every step runnable outside Airflow, with the same result."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Heavy modules (pyarrow, boto3, DuckDB, GX) are imported inside each command, so
# `--help` and a typo answer at once and each command pays only for what it uses.
from ssp_revenue.core import calendar
from ssp_revenue.core.errors import PipelineError
from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import stack

if TYPE_CHECKING:
    from ssp_revenue.allocate import tables
    from ssp_revenue.core import registry
    from ssp_revenue.operate.runtime import Services


def load_settings() -> Settings:
    """Settings from the environment; against the local stack when it is up."""
    local = Path(os.environ.get("SSP_REVENUE_LOCAL_DIR", ".local"))
    stack_file = local / "stack.json"
    if "SSP_REVENUE_STACK_FILE" not in os.environ and stack_file.exists():
        os.environ["SSP_REVENUE_STACK_FILE"] = str(stack_file)
    if os.environ.get("SSP_REVENUE_STACK_FILE"):
        for key, value in stack.LOCAL_AWS_ENV.items():
            os.environ.setdefault(key, value)
        # The local stack's time is the emulator's simulated clock.
        os.environ.setdefault("SSP_REVENUE_CLOCK", "emulator")
    return Settings.from_env()


def cmd_stack(args: argparse.Namespace) -> int:
    from ssp_revenue.operate import runtime
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
    from ssp_revenue.operate import runtime
    from ssp_revenue.operate.query import engine_for
    settings = load_settings()
    services = runtime.services_for(settings)
    engine = engine_for(settings, glue=services.catalog.glue, s3=services.s3)
    at = _instant(args.as_of, settings) if args.as_of else None
    print(engine.query(args.sql, as_of=at).format())
    return 0


def _pipeline_context(settings: Settings,
                      ssp: str | None = None) -> tuple[Services, list[registry.SspConfig]]:
    """The lake's services (bootstrapped) and the registry, or one SSP of it."""
    from ssp_revenue.core import registry
    from ssp_revenue.operate import runtime
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    return services, [registry.find(ssps, ssp)] if ssp else ssps


def cmd_run(args: argparse.Namespace) -> int:
    """Fetch, validate and publish one SSP (or all) for a date range, in this process."""
    from ssp_revenue.operate.alerts import LakeAlertLog
    from ssp_revenue.operate.outcomes import ActionableFailure
    from ssp_revenue.operate.pipeline import raise_if_actionable, run_ssp
    settings = load_settings()
    services, ssps = _pipeline_context(settings, args.ssp)
    if args.date:
        first = dt.date.fromisoformat(args.date)
        last = dt.date.fromisoformat(args.to) if args.to else first
        dates = calendar.dates_between(first, last)
    else:
        anchor = calendar.anchor_date(services.clock.now(), settings.tz)
        dates = calendar.dates_due(anchor, settings.refetch_days, settings.adjustment_days,
                                   settings.start_date)
    failed = False
    from ssp_revenue.operate import runtime
    connector_for = runtime.connectors_from_env(services)
    for config in ssps:
        job = run_ssp(config, dates, connector_for(config), services)
        for outcome in job["outcomes"]:
            print(f"{outcome['step']:9} {outcome['ssp']} {outcome['revenue_date']} "
                  f"[{outcome['severity']}] {outcome['detail']}")
        try:
            notices = raise_if_actionable(job, services)
        except ActionableFailure as exc:
            print(str(exc), file=sys.stderr)
            notices, failed = exc.alerts, True
        if notices:
            LakeAlertLog(services.s3, settings.bucket).write(notices, services.clock.now())
        for notice in notices:
            if notice["event"] == "resolved":
                print(f"resolved  {notice['incident_id']}: {notice['detail']}")
    return 1 if failed else 0


def _instant(text: str, settings: Settings) -> dt.datetime:
    """An ISO instant, or a date meaning its start in the business zone."""
    if "T" not in text and " " not in text:
        return calendar.date_start(dt.date.fromisoformat(text), settings.tz)
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=settings.tz)).astimezone(dt.UTC)


def cmd_replay(args: argparse.Namespace) -> int:
    """Every run the DAGs' schedules make in [--from, --to), in order, on the simulated clock."""
    from ssp_revenue.operate import replay, runtime
    settings = load_settings()
    if not settings.emulator_url:
        print("replay runs on the simulated clock only: start the local stack (ssp-revenue stack up)",
              file=sys.stderr)
        return 2
    settings = settings.replace(clock="replay")
    services, ssps = _pipeline_context(settings, args.ssp)
    start, end = _instant(args.date_from, settings), _instant(args.date_to, settings)
    report = replay.replay(start, end, services=services, ssps=ssps,
                           connectors=runtime.connectors_from_env(services),
                           echo=None if args.quiet else print)
    print(report.summary())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ssp_revenue.operate import status
    from ssp_revenue.operate.query import engine_for
    settings = load_settings()
    services, ssps = _pipeline_context(settings)
    engine = engine_for(settings, glue=services.catalog.glue, s3=services.s3)
    print(status.render(engine, services.clock.now(), ssps, settings))
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from ssp_revenue.operate import maintenance, runtime
    settings = load_settings()
    services = runtime.services_for(settings)
    done = maintenance.compact(services.s3, services.catalog, settings, services.clock.now(),
                               everything=args.all)
    for item in done:
        print(f"{item.table} {item.revenue_date} {item.ssp}: {item.files_before} files -> 1 "
              f"({item.rows} rows) at {item.location}")
    print(f"compacted {len(done)} partitions")
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from ssp_revenue.operate import maintenance, runtime
    settings = load_settings()
    services = runtime.services_for(settings)
    grace = dt.timedelta(days=args.older_than) if args.older_than is not None else None
    chosen = maintenance.vacuum_lake(services.s3, services.catalog, settings, services.clock.now(),
                                     apply=args.apply, grace=grace)
    print(chosen.summary(applied=args.apply))
    if not args.apply:
        print("dry run: nothing deleted (--apply deletes)")
    return 0


def _date_range(first: str, last: str) -> list[dt.date]:
    return calendar.dates_between(dt.date.fromisoformat(first), dt.date.fromisoformat(last))


def cmd_allocate(args: argparse.Namespace) -> int:
    """Allocate frozen dates; with --recompute, apply the current rules on purpose, recorded."""
    from ssp_revenue.allocate import tables
    from ssp_revenue.core import registry
    from ssp_revenue.finalize import freeze
    from ssp_revenue.operate import runtime
    settings = load_settings()
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    inputs = tables.AllocationInputs.from_config(settings.config_dir)
    ssps = registry.load_registry(settings.config_dir / "ssps.yaml")
    names = [registry.find(ssps, args.ssp).name] if args.ssp else [c.name for c in ssps]
    entries = []
    for day in _date_range(args.date_from, args.date_to):
        for ssp in names:
            entry = freeze.read_ledger(services.s3, settings.bucket, ssp, day)
            if entry is None:
                print(f"skipped   {ssp} {day}: not frozen")
            else:
                entries.append(entry)
    s3, catalog = services.s3, services.catalog
    if not args.recompute:
        for entry in entries:
            state = tables.allocate_frozen(entry, inputs=inputs, s3=s3, catalog=catalog)
            print(f"{state:9} {entry.ssp} {entry.revenue_date}")
        return 0
    # Every date is computed before anything is written: rules that leave an ad unit
    # unassigned, or a missing rate, stop the whole recomputation.
    for entry in entries:
        tables.allocation_rows(entry, tables.read_frozen(entry, s3, settings.bucket), inputs)
    now = services.clock.now()
    changed = 0
    for entry in entries:
        result = tables.recompute(entry, inputs=inputs, s3=s3, catalog=catalog, now=now)
        line = (f"{result.state:16} {entry.ssp} {entry.revenue_date} "
                f"rules {result.previous_rules} -> {result.rules_version}")
        if result.delta:
            changed += 1
            line += " " + ", ".join(f"{t} {d:+,} JPY" for t, d in result.delta.items())
        print(line)
    print(f"recomputed with rules {inputs.book.version}: {changed} (SSP, date) allocation(s) changed; "
          "differences recorded in allocation_changes")
    return 0


def _month_context(args: argparse.Namespace) -> tuple[Settings, Services, list[str],
                                                      tables.AllocationInputs]:
    from ssp_revenue.allocate import tables
    from ssp_revenue.core import registry
    from ssp_revenue.operate import runtime
    settings = load_settings()
    services = runtime.services_for(settings)
    runtime.bootstrap(services)
    names = [c.name for c in registry.load_registry(settings.config_dir / "ssps.yaml")]
    return settings, services, names, tables.AllocationInputs.from_config(settings.config_dir)


def cmd_close(args: argparse.Namespace) -> int:
    from ssp_revenue.allocate import close
    settings, services, names, inputs = _month_context(args)
    month = close.Month.parse(args.month)
    try:
        issue = close.close_month(month, names, settings=settings, s3=services.s3, catalog=services.catalog,
                                  inputs=inputs, now=services.clock.now(), reissue=args.reissue)
    except close.NotClosable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"accounting-{month}" + (f"-issue{issue.issue}" if issue.issue > 1 else "")
    (out / f"{name}.csv").write_bytes((b"\xef\xbb\xbf" if args.bom else b"") + issue.csv)
    (out / f"{name}.manifest.json").write_text(json.dumps(issue.manifest, indent=2, sort_keys=True) + "\n")
    print(f"{issue.state}: {month} issue {issue.issue}, {issue.manifest['row_count']} rows, "
          f"total {issue.manifest['totals_jpy']['total_jpy']:,} JPY, sha256 {issue.manifest['sha256']}")
    print(f"s3://{settings.bucket}/{issue.key}")
    print(out / f"{name}.csv")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ssp_revenue.allocate import close, report
    settings, services, names, inputs = _month_context(args)
    month = close.Month.parse(args.month)
    on_record = close.issues(services.s3, settings.bucket, month)
    if on_record:
        body, _ = close.read_issue(services.s3, settings.bucket, month, on_record[-1])
        status = f"Closed, issue {on_record[-1]}"
    else:
        try:
            found = close.month_figures(month, names, settings=settings, s3=services.s3,
                                    catalog=services.catalog, inputs=inputs)
        except close.NotClosable as exc:
            print(str(exc), file=sys.stderr)
            return 2
        body, status = found.csv_bytes(), "Not closed yet (every date frozen and allocated)"
    page = report.render(month, names, close.parse_csv(body), status=status, settings=settings,
                         s3=services.s3, catalog=services.catalog, inputs=inputs, as_of=services.clock.now())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"revenue-{month}.html"
    path.write_text(page, encoding="utf-8")
    print(path)
    return 0


def cmd_ssp_new(args: argparse.Namespace) -> int:
    """A candidate entry and a Connection template: nothing goes live."""
    from ssp_revenue.operate import onboarding
    settings = load_settings()
    try:
        entries, template = onboarding.new_candidate(settings, args.name, args.like, timezone=args.timezone,
                                                     currency=args.currency)
    except onboarding.OnboardingError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"added candidate {args.name} ({args.like}) to {entries}: no DAG runs it yet")
    print(f"Connection template: {template}; fill it in, then")
    print(f"  ssp-revenue ssp check {args.name} --date YYYY-MM-DD --connection {template}")
    print(f"  airflow connections add ssp_{args.name} --conn-json \"$(cat {template})\"  # at go-live")
    print(f"Going live: move the entry from {entries.name} into ssps.yaml.")
    return 0


def cmd_ssp_check(args: argparse.Namespace) -> int:
    """A dry run against the SSP: fetch, parse, validate, what would be published; writes nothing."""
    from ssp_revenue.ingest import credentials as ssp_credentials
    from ssp_revenue.operate import onboarding, runtime
    settings = load_settings()
    try:
        config, live = onboarding.find_config(settings, args.name)
        if args.connection:
            account = onboarding.credentials_from_connection(json.loads(Path(args.connection).read_text()))
        else:
            try:
                account = ssp_credentials.from_env(config.name, settings)
            except KeyError as exc:
                raise onboarding.OnboardingError(
                    str(exc).strip("\"'"),
                    f"pass --connection FILE (ssp-revenue ssp new writes a template) or set "
                    f"SSP_REVENUE_CONN_{config.name.upper()}") from None
        services = runtime.services_for(settings)
        day = dt.date.fromisoformat(args.date)
        result = onboarding.check(config, account, settings, services.clock, catalog=services.catalog,
                                  revenue_date=day, sample=args.rows)
    except onboarding.OnboardingError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(result.render())
    print(f"  entry: {'live (ssps.yaml)' if live else 'candidate (' + onboarding.CANDIDATES + ')'}")
    return 0


def _print_months(results: list[Any]) -> None:
    for found in results:
        extra = f", reissued as issue {found.reissued}" if found.reissued else ""
        print(f"{found.ssp:9} {found.month}  {found.state:17} {found.statement_id}{extra}")
        if found.detail:
            print(f"          {found.detail}")


def _print_notices(notices: list[dict[str, Any]]) -> None:
    for notice in notices:
        print(f"{notice['event']:8} {notice['incident_id']}: {notice['detail']} "
              f"(runbook: {notice['runbook']})")


def cmd_statement_load(args: argparse.Namespace) -> int:
    """An operator's statement file: landed raw, validated, reconciled, trued up."""
    from ssp_revenue.core.calendar import Month
    from ssp_revenue.operate import statements
    from ssp_revenue.operate.outcomes import ActionableFailure
    settings = load_settings()
    services, ssps = _pipeline_context(settings, args.ssp)
    try:
        month = Month.parse(args.month)
        result, notices = statements.load(ssps[0], month, Path(args.file).read_bytes(), services)
    except ActionableFailure as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (OSError, ValueError, PipelineError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    _print_months([result])
    _print_notices(notices)
    return 1 if result.state in ("rejected", "beyond_tolerance") else 0


def cmd_statement_run(args: argparse.Namespace) -> int:
    """The statements run now: what the daily ssp_revenue_statements DAG does."""
    from ssp_revenue.operate import runtime, statements
    from ssp_revenue.operate.outcomes import ActionableFailure
    settings = load_settings()
    services, ssps = _pipeline_context(settings, args.ssp)
    try:
        results, notices = statements.statement_run(services.clock.now(), ssps, services,
                                                    runtime.connectors_from_env(services))
    except ActionableFailure as exc:
        print(str(exc), file=sys.stderr)
        return 1
    _print_months(results)
    _print_notices(notices)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssp-revenue", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="start/stop the local moto + emulator stack")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("query", help="run Athena-dialect SQL (DuckDB locally, Athena in AWS)")
    p.add_argument("sql")
    p.add_argument("--as-of", metavar="INSTANT",
                   help="answer as the lake stood then (ISO instant; a date means its start)")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("run", help="fetch -> validate -> publish outside Airflow")
    p.add_argument("--ssp")
    p.add_argument("--date", help="first revenue date (default: the due window)")
    p.add_argument("--to", help="last revenue date, inclusive")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("replay", help="every scheduled run in a span, in order (simulated clock only)")
    p.add_argument("--from", dest="date_from", required=True,
                   help="first instant (ISO, e.g. 2026-11-01T06:00+09:00; a date means its start)")
    p.add_argument("--to", dest="date_to", required=True, help="end instant, exclusive")
    p.add_argument("--ssp")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("ssp", help="onboard an SSP: a candidate entry, then a dry run that writes nothing")
    ssp_sub = p.add_subparsers(dest="ssp_command", required=True)
    q = ssp_sub.add_parser("new", help="a candidate registry entry and a Connection template")
    q.add_argument("name")
    q.add_argument("--like", required=True, help="the report style it uses (async_job, rest_json, ...)")
    q.add_argument("--timezone", default="Asia/Tokyo", help="the zone its report dates are in")
    q.add_argument("--currency", default="JPY", help="the only currency it may report in")
    q.set_defaults(func=cmd_ssp_new)
    q = ssp_sub.add_parser("check", help="fetch, parse and validate one date; write nothing")
    q.add_argument("name")
    q.add_argument("--date", required=True, help="the revenue date to try")
    q.add_argument("--connection", help="a Connection JSON file (default: SSP_REVENUE_CONN_<NAME> or the "
                                        "local emulator's demo account)")
    q.add_argument("--rows", type=int, default=5, help="first rows to print")
    q.set_defaults(func=cmd_ssp_check)

    p = sub.add_parser("statement", help="monthly statements: load a file, or reconcile now")
    st_sub = p.add_subparsers(dest="statement_command", required=True)
    q = st_sub.add_parser("load", help="land, validate, reconcile and true up a statement file")
    q.add_argument("ssp")
    q.add_argument("month", help="YYYY-MM")
    q.add_argument("file", help="the statement as the SSP issued it (CSV or JSON)")
    q.set_defaults(func=cmd_statement_load)
    q = st_sub.add_parser("run", help="fetch and reconcile every SSP's recent months now")
    q.add_argument("--ssp")
    q.set_defaults(func=cmd_statement_run)

    p = sub.add_parser("status", help="open incidents, dates not frozen yet, late freezes, next runs")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("allocate", help="split frozen dates by the allocation rules")
    p.add_argument("--from", dest="date_from", required=True, help="first revenue date")
    p.add_argument("--to", dest="date_to", required=True, help="last revenue date, inclusive")
    p.add_argument("--ssp")
    p.add_argument("--recompute", action="store_true",
                   help="apply the current rules to allocated dates: new version + recorded difference")
    p.set_defaults(func=cmd_allocate)

    p = sub.add_parser("close", help="the monthly accounting CSV and manifest")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--reissue", action="store_true", help="close a closed month again as issue N+1")
    p.add_argument("--bom", action="store_true", help="UTF-8 with BOM, for spreadsheet users")
    p.add_argument("--out", default=".local/closes")
    p.set_defaults(func=cmd_close)

    p = sub.add_parser("report", help="the month's self-contained HTML revenue report")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--out", default=".local/reports")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compact", help="rewrite the closed dates' small log files as one per partition")
    p.add_argument("--all", action="store_true", help="open dates too")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("vacuum", help="delete superseded versions and compacted-away files (dry run)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="apply", action="store_false", default=False,
                      help="print what would go and how many bytes (the default)")
    mode.add_argument("--apply", dest="apply", action="store_true", help="delete them")
    p.add_argument("--older-than", type=int, metavar="DAYS",
                   help="superseded for longer than this (default SSP_REVENUE_READER_GRACE_DAYS, 7)")
    p.set_defaults(func=cmd_vacuum)

    return parser


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=os.environ.get("SSP_REVENUE_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


def run() -> None:
    """The console script: ``main``, then out without tearing the interpreter down.

    Unloading boto3, sqlglot and DuckDB takes ~0.3 s that nobody needs once the
    answer is printed; outputs are flushed and logging shut down first.
    """
    code: int | str | None
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    os._exit(code or 0)


if __name__ == "__main__":
    run()
