"""``ssp-revenue status``: one screen for the operator, from the same views Athena has.

Open incidents (``incidents_open``), dates not frozen yet with their cutoff
and attempts so far (``dates_open``), dates frozen late
(``dates_frozen_late``), the statements reconciled and the months still awaiting
one, and what the next run will fetch (the schedule).
"""

from __future__ import annotations

import datetime as dt

from ssp_revenue.core import calendar
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import schedule, statements
from ssp_revenue.operate.query import QueryEngine


def next_runs(now: dt.datetime, ssps: list[SspConfig], settings: Settings, count: int = 3) -> list[str]:
    """The next runs the scheduler makes after ``now``, and what each fetches."""
    out = []
    for run in schedule.runs_between(now, now + dt.timedelta(days=2), ssps, settings)[:count]:
        local = calendar.as_local(run.due, settings.tz)
        if run.kind == "daily":
            assert run.revenue_date is not None
            dates = calendar.dates_due(run.revenue_date, settings.refetch_days, settings.adjustment_days,
                                       settings.start_date)
            what = (f"every SSP, {dates[0]}..{dates[-1]} ({len(dates)} dates)" if dates
                    else "nothing (before the start date)")
        elif run.kind == "chance":
            plan = schedule.chance_plan(run.due, ssps, settings)
            what = ", ".join(f"{s} {','.join(d.isoformat() for d in ds)}" for s, ds in plan.items())
        elif run.kind == "close":
            what = "the monthly close"
        else:
            what = "the monthly statements (fetch, reconcile, true up)"
        out.append(f"{local:%Y-%m-%d %H:%M %Z} {run.kind:6} {what}")
    return out


def statement_lines(engine: QueryEngine, now: dt.datetime, ssps: list[SspConfig], settings: Settings,
                    ) -> list[str]:
    """Per SSP and month: reported vs paid and the variance; the months still awaiting a statement."""
    rows = engine.query(
        "SELECT ssp, month, currency, reported, paid, variance, variance_share, paid_jpy, status "
        "FROM statement_reconciliation ORDER BY month, ssp").rows
    done = {(str(r[0]), str(r[1])) for r in rows}
    today = calendar.as_local(now, settings.tz).date()
    awaiting = []
    for config in ssps:
        terms = config.statement
        if terms is None:
            continue
        for month in statements.months_to_check(today, settings.start_date, settings.statement_months,
                                                settings.end_date):
            if (config.name, str(month)) not in done:
                due = statements.due_day(terms.expected_day, month)
                late = due + dt.timedelta(days=terms.grace_days)
                state = "OVERDUE" if today > late else "awaiting"
                awaiting.append(f"  {config.name:9} {month}  {state}: expected {due} ({terms.source}), "
                                f"overdue after {late}")
    out = [f"Statements reconciled: {len(rows)} (reported vs paid, in the SSP's currency)"]
    for ssp, month, currency, reported, paid, variance, share, paid_jpy, state in rows:
        out.append(f"  {ssp:9} {month}  reported {reported} {currency}  paid {paid}  variance {variance} "
                   f"({float(share) * 100:+.2f}%)  paid {int(paid_jpy):,} JPY  {state}")
    out += ["", f"Months awaiting a statement: {len(awaiting)}", *awaiting]
    return out


def render(engine: QueryEngine, now: dt.datetime, ssps: list[SspConfig], settings: Settings) -> str:
    tz = settings.tz
    lines = [f"ssp-revenue status at {calendar.as_local(now, tz):%Y-%m-%d %H:%M %Z}", ""]
    incidents = engine.query(
        "SELECT incident_id, affected_dates, first_seen, last_seen, detail, runbook "
        "FROM incidents_open ORDER BY first_seen").rows
    lines.append(f"Open incidents: {len(incidents)}")
    for incident_id, dates, first, last, detail, runbook in incidents:
        days = str(dates).split(",") if dates else []
        span = f"{days[0]}..{days[-1]} ({len(days)} dates)" if len(days) > 1 else (days[0] if days else "")
        lines.append(f"  {incident_id}  {span}  first {first}  last {last}")
        lines.append(f"      {detail}")
        lines.append(f"      runbook: {runbook}")
    by_name = {s.name: s for s in ssps}
    open_dates = engine.query(
        "SELECT ssp, revenue_date, attempts, validated, last_attempt FROM dates_open "
        "ORDER BY revenue_date, ssp").rows
    lines += ["", f"Dates not frozen yet: {len(open_dates)}"]
    for ssp, day, attempts, validated, last in open_dates:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        cut = calendar.cutoff(day, tz, settings.freeze_hours)
        left = ""
        if ssp in by_name:
            chances = [t for t in schedule.attempts_before_cutoff(by_name[ssp], day, settings) if t > now]
            left = f", {len(chances)} chance(s) left" if cut > now else ", past its cutoff"
        lines.append(f"  {ssp:9} {day}  cutoff {calendar.as_local(cut, tz):%m-%d %H:%M}  "
                     f"attempts {attempts} ({validated} validated{left})  last {last}")
    late = engine.query("SELECT ssp, revenue_date, fetched_at, finalized_at FROM dates_frozen_late "
                        "ORDER BY revenue_date, ssp").rows
    lines += ["", f"Dates frozen late: {len(late)}"]
    lines += [f"  {ssp:9} {day}  from the version fetched {fetched}, frozen {frozen}"
              for ssp, day, fetched, frozen in late]
    lines += ["", *statement_lines(engine, now, ssps, settings)]
    lines += ["", "Next runs:"] + [f"  {line}" for line in next_runs(now, ssps, settings)]
    return "\n".join(lines)
