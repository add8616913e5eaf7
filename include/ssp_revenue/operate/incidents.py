"""Incidents: one per real problem, paged once, kept up to date, resolved when it is gone.

An incident is keyed by the problem, not by the date that showed it:
(SSP, reason) for what is wrong with the SSP itself (its credentials, its
Connection, its schema, its currency, its reference data), (SSP, date, reason)
for what is wrong with one date (no version after the grace period, a ledger
mismatch, a large restatement, a late freeze), ("all", reason) for what is
wrong for every SSP (the allocation rules).

State lives in the lake bucket as write-once objects, so racing runs agree:

    incidents/state/<problem>/n=000001/opened.json     conditional put: the page
    incidents/state/<problem>/n=000001/seen/<at>.json  each run that saw more dates
    incidents/state/<problem>/n=000001/resolved.json   conditional put: the all-clear

A problem that comes back after its incident was resolved opens number n+1.
Every state change is also a row of the ``incidents`` table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from ssp_revenue.core import schema
from ssp_revenue.core.clock import parse_instant
from ssp_revenue.core.errors import Reason
from ssp_revenue.lake import logs, store
from ssp_revenue.lake.catalog import GlueCatalog
from ssp_revenue.operate.outcomes import TRANSIENT, Severity, StepOutcome

TABLE = "incidents"
PREFIX = "incidents/state/"
RUNBOOK = "docs/runbook.md"
EVERY_SSP = "all"

# Problems of the SSP itself: one incident however many dates show them.
SSP_WIDE = frozenset({Reason.AUTH, Reason.MISSING_CONNECTION, Reason.SCHEMA_DRIFT,
                      Reason.WRONG_CURRENCY, Reason.MISSING_REFERENCE})
# Problems of every SSP at once.
GLOBAL = frozenset({Reason.RULES})
# What a date suffers because of another problem: attached to that problem's
# incident when it lists the date, an incident of its own otherwise.
CONSEQUENCES = frozenset({Reason.LATE_VERSION, Reason.NO_VERSION_AT_CUTOFF})
# Events rather than states: over once the date leaves the fetch window.
ENDS_WITH_WINDOW = frozenset({Reason.LATE_VERSION, Reason.LARGE_RESTATEMENT})
# The step whose clean pass for a date shows the problem is gone.
EVIDENCE_STEP = {
    Reason.AUTH: "fetch",
    Reason.MISSING_CONNECTION: "fetch",
    Reason.SCHEMA_DRIFT: "validate",
    Reason.WRONG_CURRENCY: "validate",
    Reason.MISSING_REFERENCE: "allocate",
    Reason.RULES: "allocate",
    Reason.NOT_CLOSABLE: "close",
    Reason.LARGE_RESTATEMENT: "adjust",
    Reason.STATEMENT_REJECTED: "statement",
    Reason.STATEMENT_VARIANCE: "statement",
    Reason.STATEMENT_OVERDUE: "statement",
    Reason.STATEMENT_CORRECTED: "reissue",
}


@dataclasses.dataclass(frozen=True, order=True)
class Problem:
    """What is wrong, as a key: the same problem seen by any run is the same Problem."""

    ssp: str
    reason: str
    revenue_date: dt.date | None = None

    @classmethod
    def of(cls, outcome: StepOutcome) -> Problem:
        reason = outcome.reason or Reason.VALIDATION
        if reason in GLOBAL:
            return cls(EVERY_SSP, reason.value)
        if reason in SSP_WIDE:
            return cls(outcome.ssp, reason.value)
        if reason in TRANSIENT:
            # Actionable only past cutoff + grace on a date without a freezable
            # version: the problem is the date's missing version, whatever the hiccup.
            reason = Reason.NO_VERSION_AT_CUTOFF
        return cls(outcome.ssp, reason.value, outcome.revenue_date)

    @property
    def prefix(self) -> str:
        key = f"{PREFIX}ssp={store.partition_value(self.ssp)}/reason={store.partition_value(self.reason)}/"
        return key + (f"revenue_date={self.revenue_date.isoformat()}/" if self.revenue_date else "")

    @property
    def key(self) -> str:
        return self.prefix.removeprefix(PREFIX).rstrip("/")

    @property
    def step(self) -> str:
        return EVIDENCE_STEP.get(Reason(self.reason), "freeze")

    @property
    def runbook(self) -> str:
        return f"{RUNBOOK}#{self.reason}"


@dataclasses.dataclass
class Incident:
    problem: Problem
    number: int
    opened_at: dt.datetime
    detail: str
    dates: set[dt.date]
    consequences: dict[str, str]
    last_seen: dt.datetime
    resolved_at: dt.datetime | None = None
    resolution: str = ""

    @property
    def incident_id(self) -> str:
        p = self.problem
        return ".".join([p.ssp, p.reason] + ([p.revenue_date.isoformat()] if p.revenue_date else [])
                        + [str(self.number)])

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def prefix(self) -> str:
        return f"{self.problem.prefix}n={self.number:06d}/"

    def notice(self, event: str, at: dt.datetime) -> dict[str, Any]:
        """What the notifier delivers (log, Slack, email) for ``event``: opened or resolved."""
        dates = sorted(self.dates)
        span = (dates[0].isoformat() if len(dates) == 1 else
                f"{dates[0].isoformat()}..{dates[-1].isoformat()}" if dates else "")
        detail = self.resolution if event == "resolved" else self.detail
        return {
            "event": event, "incident_id": self.incident_id, "ssp": self.problem.ssp,
            "reason": self.problem.reason, "revenue_date": span,
            "dates": [d.isoformat() for d in dates], "step": self.problem.step,
            "first_seen": self.opened_at.isoformat(), "last_seen": self.last_seen.isoformat(),
            "consequences": dict(sorted(self.consequences.items())),
            "detail": detail, "runbook": self.problem.runbook, "at": at.isoformat(),
        }


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, default=str).encode()


class IncidentBook:
    """Opening, noting and resolving incidents in the lake; every writer agrees."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def _read(self, key: str) -> dict[str, Any]:
        return dict(json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()))

    def history(self, ssp: str) -> list[Incident]:
        """Every incident of the SSP (or of ``all``), oldest first."""
        keys = store.list_keys(self.s3, self.bucket, f"{PREFIX}ssp={store.partition_value(ssp)}/")
        by_incident: dict[str, list[str]] = {}
        for key in keys:
            head, _, _ = key.partition("/n=")
            number = key.split("/n=", 1)[1].split("/", 1)[0]
            by_incident.setdefault(f"{head}/n={number}/", []).append(key)
        out = []
        for prefix, members in sorted(by_incident.items()):
            if f"{prefix}opened.json" not in members:
                continue
            out.append(self._load(prefix, members))
        return out

    def _load(self, prefix: str, members: list[str]) -> Incident:
        opened = self._read(f"{prefix}opened.json")
        day = opened.get("revenue_date")
        problem = Problem(opened["ssp"], opened["reason"], dt.date.fromisoformat(day) if day else None)
        incident = Incident(
            problem=problem, number=int(opened["number"]), opened_at=parse_instant(opened["at"]),
            detail=opened["detail"], dates={dt.date.fromisoformat(d) for d in opened["dates"]},
            consequences=dict(opened.get("consequences", {})), last_seen=parse_instant(opened["at"]),
        )
        for key in sorted(k for k in members if "/seen/" in k):
            seen = self._read(key)
            incident.dates |= {dt.date.fromisoformat(d) for d in seen["dates"]}
            incident.consequences.update(seen.get("consequences", {}))
            incident.last_seen = max(incident.last_seen, parse_instant(seen["at"]))
        if f"{prefix}resolved.json" in members:
            resolved = self._read(f"{prefix}resolved.json")
            incident.resolved_at = parse_instant(resolved["at"])
            incident.resolution = resolved["detail"]
        return incident

    def open(self, problem: Problem, after: Incident | None, *, at: dt.datetime,
             dates: set[dt.date], detail: str, consequences: dict[str, str]) -> tuple[Incident, bool]:
        """Open the problem's next incident; False if a racing run opened it first."""
        number = after.number + 1 if after is not None else 1
        incident = Incident(problem, number, at, detail, set(dates), dict(consequences), at)
        body = {"ssp": problem.ssp, "reason": problem.reason,
                "revenue_date": problem.revenue_date.isoformat() if problem.revenue_date else None,
                "number": number, "at": at.isoformat(), "detail": detail,
                "dates": sorted(d.isoformat() for d in dates), "consequences": consequences}
        if store.put_once(self.s3, self.bucket, f"{incident.prefix}opened.json", _json(body),
                         ContentType="application/json"):
            return incident, True
        members = store.list_keys(self.s3, self.bucket, incident.prefix)
        winner = self._load(incident.prefix, members)
        self.note(winner, at=at, dates=dates, consequences=consequences)
        return winner, False

    def note(self, incident: Incident, *, at: dt.datetime, dates: Iterable[dt.date],
             consequences: dict[str, str]) -> bool:
        """Record what this run added (dates, consequences); nothing when it added nothing."""
        new_dates = set(dates) - incident.dates
        new_consequences = {d: c for d, c in consequences.items() if d not in incident.consequences}
        if not new_dates and not new_consequences:
            return False
        body = {"at": at.isoformat(), "dates": sorted(d.isoformat() for d in new_dates),
                "consequences": new_consequences}
        key = f"{incident.prefix}seen/{store.stamp(at)}-{uuid.uuid4().hex[:8]}.json"
        store.put_once(self.s3, self.bucket, key, _json(body), ContentType="application/json")
        incident.dates |= new_dates
        incident.consequences.update(new_consequences)
        incident.last_seen = max(incident.last_seen, at)
        return True

    def resolve(self, incident: Incident, *, at: dt.datetime, detail: str) -> bool:
        """Close the incident; False if a racing run closed it first (it sends the all-clear)."""
        won = store.put_once(self.s3, self.bucket, f"{incident.prefix}resolved.json",
                            _json({"at": at.isoformat(), "detail": detail}),
                            ContentType="application/json")
        incident.resolved_at, incident.resolution = at, detail
        return won

    def open_incidents(self, ssps: Iterable[str]) -> list[Incident]:
        return [i for s in [*ssps, EVERY_SSP] for i in self.history(s) if i.is_open]


@dataclasses.dataclass
class Review:
    """What one run did to the incidents of one SSP."""

    at: dt.datetime
    opened: list[Incident] = dataclasses.field(default_factory=list)
    updated: list[Incident] = dataclasses.field(default_factory=list)
    resolved: list[Incident] = dataclasses.field(default_factory=list)

    def notices(self) -> list[dict[str, Any]]:
        """Pages for opened incidents and all-clears for resolved ones; updates page nobody."""
        return ([i.notice("opened", self.at) for i in self.opened]
                + [i.notice("resolved", self.at) for i in self.resolved])


def _latest(history: list[Incident], problem: Problem) -> Incident | None:
    mine = [i for i in history if i.problem == problem]
    return max(mine, key=lambda i: i.number) if mine else None


def review(
    ssp: str,
    outcomes: list[StepOutcome],
    ran: dict[str, list[str]],
    *,
    book: IncidentBook,
    at: dt.datetime,
    window_start: dt.date,
) -> Review:
    """Turn one run's outcomes for ``ssp`` into incident changes.

    ``ran`` says which dates each step processed in this run: the evidence that
    a problem not seen again is gone (a run that never reached the step proves
    nothing). ``window_start`` is the oldest date runs still fetch.
    """
    result = Review(at=at)
    history = book.history(ssp) + (book.history(EVERY_SSP) if ssp != EVERY_SSP else [])
    actionable: dict[Problem, list[StepOutcome]] = {}
    for outcome in outcomes:
        if outcome.severity is Severity.ACTIONABLE:
            actionable.setdefault(Problem.of(outcome), []).append(outcome)
    # Every date an SSP-wide reason touched in this run, converging or not.
    touched: dict[str, set[dt.date]] = {}
    for outcome in outcomes:
        if outcome.reason is not None and outcome.severity is not Severity.OK:
            touched.setdefault(outcome.reason.value, set()).add(outcome.revenue_date)

    # Consequences: a date frozen late, or not at all, because of an SSP-wide problem.
    wide = [i for i in history if i.problem.revenue_date is None]
    attached: dict[str, dict[str, str]] = {}  # incident id -> consequences to add
    for problem in sorted(p for p in actionable if Reason(p.reason) in CONSEQUENCES):
        day = problem.revenue_date
        assert day is not None
        cause = next((i for i in reversed(wide) if day in i.dates), None)
        fresh = next((p for p in actionable if p.revenue_date is None and p.ssp == ssp
                      and day in touched.get(p.reason, set())), None)
        if cause is None and fresh is None:
            continue
        text = f"{problem.reason}: {actionable[problem][0].detail}"
        if cause is not None:
            attached.setdefault(cause.incident_id, {})[day.isoformat()] = text
        else:
            assert fresh is not None
            actionable[fresh].append(dataclasses.replace(actionable[problem][0], detail=text))
        del actionable[problem]

    for problem, seen in sorted(actionable.items()):
        dates = ({o.revenue_date for o in seen} | touched.get(problem.reason, set())
                 if problem.revenue_date is None else {problem.revenue_date})
        consequences = {o.revenue_date.isoformat(): o.detail for o in seen
                        if o.reason is not None and o.reason in CONSEQUENCES and problem.revenue_date is None}
        latest = _latest(history, problem)
        if latest is not None and latest.is_open:
            if book.note(latest, at=at, dates=dates, consequences=consequences):
                result.updated.append(latest)
            continue
        detail = seen[0].detail
        incident, won = book.open(problem, latest, at=at, dates=dates, detail=detail,
                                  consequences=consequences)
        (result.opened if won else result.updated).append(incident)

    for incident in history:
        if incident.incident_id in attached and book.note(
                incident, at=at, dates=(), consequences=attached[incident.incident_id]):
            result.updated.append(incident)
    for incident in history:
        if not incident.is_open or incident.problem in actionable:
            continue
        problem = incident.problem
        reason = problem.reason
        evidence = ran.get(problem.step, [])
        if problem.revenue_date is None:
            # SSP-wide (or, for "all", this SSP's share of a global problem).
            still = touched.get(reason, set())
            if still:
                if book.note(incident, at=at, dates=still, consequences={}):
                    result.updated.append(incident)
                continue
            if evidence:
                why = f"gone: {problem.step} passed for {len(evidence)} date(s) without {reason}"
                if book.resolve(incident, at=at, detail=why):
                    result.resolved.append(incident)
            continue
        if problem.ssp != ssp:
            continue
        text = problem.revenue_date.isoformat()
        if text in evidence and problem.revenue_date not in touched.get(reason, set()):
            why = f"gone: {problem.step} passed for {text} without {reason}"
        elif Reason(reason) in ENDS_WITH_WINDOW and problem.revenue_date < window_start:
            why = f"over: {text} left the fetch window (oldest date fetched is {window_start})"
        else:
            continue
        if book.resolve(incident, at=at, detail=why):
            result.resolved.append(incident)
    changed = {i.incident_id for i in result.opened + result.resolved}
    result.updated = list({i.incident_id: i for i in result.updated if i.incident_id not in changed}.values())
    return result


def settle(ssp: str, outcomes: list[StepOutcome], ran: dict[str, list[str]], *, s3: Any,
           catalog: GlueCatalog, at: dt.datetime, window_start: dt.date) -> Review:
    """Review one run's outcomes and record the changes in the ``incidents`` table."""
    result = review(ssp, outcomes, ran, book=IncidentBook(s3, catalog.bucket), at=at,
                    window_start=window_start)
    record(result, s3=s3, catalog=catalog)
    return result


def table_rows(result: Review) -> list[dict[str, Any]]:
    """The ``incidents`` table's rows for one review: one per state change."""
    rows = []
    for state, items in (("opened", result.opened), ("updated", result.updated),
                         ("resolved", result.resolved)):
        for incident in items:
            first = min(incident.dates) if incident.dates else (incident.problem.revenue_date
                                                                or incident.opened_at.date())
            rows.append({
                "revenue_date": first, "ssp": incident.problem.ssp,
                "incident_id": incident.incident_id, "problem": incident.problem.key,
                "reason": incident.problem.reason, "state": state,
                "affected_dates": ",".join(d.isoformat() for d in sorted(incident.dates)),
                "consequences": "\n".join(f"{d}: {c}" for d, c in sorted(incident.consequences.items())),
                "first_seen": incident.opened_at, "last_seen": incident.last_seen,
                "detail": incident.resolution if state == "resolved" else incident.detail,
                "runbook": incident.problem.runbook, "recorded_at": result.at,
            })
    return rows


def record(result: Review, *, s3: Any, catalog: GlueCatalog) -> int:
    """Append the review's state changes to the ``incidents`` table (one file per partition)."""
    rows = table_rows(result)
    by_partition: dict[tuple[dt.date, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_partition.setdefault((row["revenue_date"], row["ssp"]), []).append(row)
    for (day, ssp), items in sorted(by_partition.items()):
        logs.append(s3, catalog, TABLE, ssp, day, pa.Table.from_pylist(items, schema=schema.INCIDENTS),
                    at=result.at)
    return len(rows)
