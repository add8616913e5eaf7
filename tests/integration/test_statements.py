"""Monthly statements on the real local stack: the emulator issues them over HTTP (its API,
its drop bucket, or a file an operator downloads and loads), the pipeline reconciles them
to what it froze, and trues the month up to the yen."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import requests

from ssp_revenue.allocate import close, reconcile, report, tables, trueup
from ssp_revenue.core import registry, schema
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import Reason
from ssp_revenue.lake import statements as lake_statements
from ssp_revenue.lake import store
from ssp_revenue.operate import incidents, statements, status
from ssp_revenue.operate.outcomes import ActionableFailure
from ssp_revenue.operate.pipeline import run_ssp

from .conftest import Lake

pytestmark = pytest.mark.integration
TOKYO = ZoneInfo("Asia/Tokyo")
FIRST, LAST = dt.date(2026, 10, 30), dt.date(2026, 11, 2)  # the account's days: two months' ends
OCTOBER, NOVEMBER = Month(2026, 10), Month(2026, 11)
DAYS = {OCTOBER: ("2026-10-30", None), NOVEMBER: (None, "2026-11-02")}


def at(day: dt.date, hour: int = 11) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TOKYO).astimezone(dt.UTC)


class Statements:
    """One test's lake with both months frozen, and the emulator's statement controls."""

    def __init__(self, env: Lake, emulator: Any, ssps: tuple[str, ...]) -> None:
        self.env, self.emulator = env, emulator
        self.configs = [registry.find(env.registry, s) for s in ssps]
        self.http = requests.Session()
        for config in self.configs:
            for month in (OCTOBER, NOVEMBER):
                self.plan(config.name, month, "ivt")
        dates = [FIRST + dt.timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
        for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 3), dt.date(2026, 11, 5)):
            emulator.set_clock(at(day))
            for config in self.configs:
                run_ssp(config, dates, env.connector(ssp=config.name), env.services)

    def plan(self, ssp: str, month: Month, variant: str, **params: object) -> None:
        since, until = DAYS[month]
        body = {"ssp": ssp, "month": str(month), "variant": variant,
                "params": {"since": since, "until": until, **params}}
        self.http.post(self.emulator.url + "/_control/statements", json=body, timeout=10).raise_for_status()

    def truth(self, ssp: str, month: Month) -> dict[str, Any]:
        response = self.http.get(self.emulator.url + "/_control/truth",
                                 params={"ssp": ssp, "statement": str(month)}, timeout=60)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def statement_file(self, ssp: str, month: Month) -> bytes:
        response = self.http.get(self.emulator.url + "/_control/statement_file",
                                 params={"ssp": ssp, "month": str(month)}, timeout=60)
        response.raise_for_status()
        return response.content

    def run(self, day: dt.date, hour: int = 10) -> tuple[list[statements.MonthResult], list[dict[str, Any]]]:
        self.emulator.set_clock(at(day, hour))
        try:
            return statements.statement_run(self.env.clock.now(), self.configs, self.env.services,
                                            lambda c: self.env.connector(ssp=c.name))
        except ActionableFailure as exc:
            return [], exc.alerts

    def load(self, ssp: str, month: Month, body: bytes) -> tuple[statements.MonthResult | None,
                                                                list[dict[str, Any]]]:
        try:
            return statements.load(self.config(ssp), month, body, self.env.services)
        except ActionableFailure as exc:
            return None, exc.alerts

    def config(self, ssp: str) -> registry.SspConfig:
        return next(c for c in self.configs if c.name == ssp)

    def reconciliation(self, ssp: str, month: Month) -> dict[str, Any]:
        return self.read(reconcile.TABLE, schema.STATEMENT_RECONCILIATION, ssp, month)[0]

    def read(self, table: str, arrow: pa.Schema, ssp: str, month: Month) -> list[dict[str, Any]]:
        part = self.env.services.catalog.get_partition(table, month.first.isoformat(), ssp)
        if part is None:
            return []
        rows: list[dict[str, Any]] = store.read_location(self.env.services.s3, part.location,
                                                         arrow).to_pylist()
        return rows

    def allocated_yen(self, ssp: str, month: Month) -> int:
        total = 0
        for day in month.dates(FIRST):
            part = self.env.services.catalog.get_partition(tables.TABLE, day.isoformat(), ssp)
            if part is not None and day <= LAST:
                total += sum(int(r["revenue_jpy"]) for r in
                             tables.read_allocation(part.location, self.env.services.s3).to_pylist())
        return total


def _env(lake_settings: Any) -> Lake:
    return Lake(dataclasses.replace(lake_settings, start_date=FIRST, end_date=LAST))


def _uploaded(env: Lake, ssp: str) -> None:
    """Make ``ssp``'s statement one an operator loads (its emulator still issues it)."""
    env.registry = [dataclasses.replace(c, statement=dataclasses.replace(c.statement, source="upload"))
                    if c.name == ssp and c.statement else c for c in env.registry]


def pages(notices: list[dict[str, Any]], reason: Reason) -> list[dict[str, Any]]:
    return [n for n in notices if n["event"] == "opened" and n["reason"] == reason.value]


def test_each_variant_reconciles_to_the_emulator_truth_and_trues_up_to_the_yen(
        lake_settings: Any, emulator: Any) -> None:
    env = _env(lake_settings)
    _uploaded(env, "gamnet")
    world = Statements(env, emulator, ("adpulse", "xchange", "dropzone", "gamnet"))
    world.plan("xchange", OCTOBER, "fx")  # a USD account paid in JPY at the payment rate
    world.plan("dropzone", OCTOBER, "late_deduction")  # and a deduction for September
    world.plan("adpulse", OCTOBER, "ivt", ivt_pct="2.5")

    results, notices = world.run(dt.date(2026, 11, 6))
    assert notices == []
    by_key = {(r.ssp, r.month): r for r in results}
    assert {k: r.state for k, r in by_key.items() if k[0] == "gamnet"} == {
        ("gamnet", OCTOBER): "awaiting"}  # an upload is not fetched; Nov has not ended
    world.emulator.set_clock(at(dt.date(2026, 11, 12)))
    result, notices = world.load("gamnet", OCTOBER, world.statement_file("gamnet", OCTOBER))
    assert result is not None and result.state == reconcile.WITHIN and notices == []

    for ssp in ("adpulse", "xchange", "dropzone", "gamnet"):
        truth = world.truth(ssp, OCTOBER)
        row = world.reconciliation(ssp, OCTOBER)
        config = world.config(ssp)
        issued = truth["statements"][-1]
        # Reported is what we froze plus the restatements since: the emulator's settled figures.
        assert row["reported"] == decimal.Decimal(truth["reported"]), ssp
        assert row["frozen"] + row["adjustments"] == row["reported"]
        assert row["paid"] == decimal.Decimal(issued["paid"]), ssp
        assert row["variance"] == decimal.Decimal(issued["variance"]), ssp
        assert row["statement_id"] == issued["statement_id"] and row["status"] == reconcile.WITHIN
        assert row["currency"] == config.currency and row["statement_currency"] == issued["currency"]
        # To the yen: allocation_final + the true-up lines = the statement in yen.
        lines = world.read(trueup.TABLE, schema.ALLOCATION_TRUEUP, ssp, OCTOBER)
        assert world.allocated_yen(ssp, OCTOBER) + sum(int(r["trueup_jpy"]) for r in lines) == int(
            row["paid_jpy"])
        assert sum(int(r["paid_jpy"]) for r in lines) == int(row["paid_jpy"])
    adpulse = world.reconciliation("adpulse", OCTOBER)
    assert "invalid_traffic" in adpulse["explanation"]
    assert adpulse["variance_share"] < 0 and abs(adpulse["variance_share"]) < decimal.Decimal("0.026")
    assert "paid in JPY at" in world.reconciliation("xchange", OCTOBER)["explanation"]
    assert "late_deduction for 2026-09" in world.reconciliation("dropzone", OCTOBER)["explanation"]
    xchange = world.reconciliation("xchange", OCTOBER)
    assert xchange["paid_jpy"] == decimal.Decimal(world.truth("xchange", OCTOBER)["statements"][0]["total"])

    # The operator's screen and the business team's report say the same, per SSP and month.
    screen = "\n".join(status.statement_lines(env.engine(), env.clock.now(), world.configs, env.settings))
    assert "Statements reconciled: 4" in screen and "Months awaiting a statement: 0" in screen
    assert f"paid {int(adpulse['paid_jpy']):,} JPY  within_tolerance" in screen
    names = [c.name for c in world.configs]
    inputs = tables.AllocationInputs.from_config(env.settings.config_dir)
    figures = close.month_figures(OCTOBER, names, settings=env.settings, s3=env.services.s3,
                                  catalog=env.services.catalog, inputs=inputs)
    page = report.render(OCTOBER, [*names, "nihon"], figures.rows, status="Not closed yet",
                         settings=env.settings, s3=env.services.s3, catalog=env.services.catalog,
                         inputs=inputs, as_of=env.clock.now())
    assert page.count("within_tolerance") == 4 and "awaiting statement" in page  # nihon declares none
    assert f'data-yen="{int(adpulse["paid_jpy"])}"' in page
    assert sum(r["total_jpy"] for r in figures.rows) == sum(
        int(world.reconciliation(c, OCTOBER)["paid_jpy"]) for c in names)

    # As of an instant before the statements run, the month had no true-up; it has one now.
    count = "SELECT count(*) FROM allocation_trueup WHERE ssp = 'adpulse'"
    assert env.engine().query(count, as_of=at(dt.date(2026, 11, 5))).rows[0][0] == 0
    assert env.engine().query(count, as_of=env.clock.now()).rows[0][0] > 0

    # The next day's run finds the same statements (they arrive twice): nothing new is written.
    before = env.keys("tables/")
    results, notices = world.run(dt.date(2026, 11, 7))
    assert notices == [] and env.keys("tables/") == before


def test_a_month_closed_before_its_statement_is_reissued_and_a_correction_pages_once(
        lake_settings: Any, emulator: Any) -> None:
    env = _env(lake_settings)
    world = Statements(env, emulator, ("adpulse", "xchange"))
    world.plan("adpulse", OCTOBER, "corrected", first_ivt_pct="1.2", ivt_pct="0.4", day=12)
    world.plan("xchange", OCTOBER, "late", day=20)
    inputs = tables.AllocationInputs.from_config(env.settings.config_dir)
    names = ["adpulse", "xchange"]

    world.run(dt.date(2026, 11, 6))  # adpulse's first statement is in; xchange's is late
    first = close.close_month(OCTOBER, names, settings=env.settings, s3=env.services.s3,
                              catalog=env.services.catalog, inputs=inputs, now=env.clock.now())
    assert first.issue == 1 and first.manifest["statements"] == {"adpulse": "adpulse-2026-10-1"}
    rows = close.parse_csv(first.csv)
    paid = world.reconciliation("adpulse", OCTOBER)["paid_jpy"]
    assert sum(r["total_jpy"] for r in rows if r["ssp"] == "adpulse") == int(paid)
    assert all(r["adjustments_jpy"] == 0 for r in rows if r["ssp"] == "adpulse")  # the statement pays them
    assert sum(r["trueup_jpy"] for r in rows if r["ssp"] == "xchange") == 0

    # The correction changes a closed month: one page, and no reissue until someone decides.
    _, notices = world.run(dt.date(2026, 11, 13))
    corrected = pages(notices, Reason.STATEMENT_CORRECTED)
    assert len(corrected) == 1 and "ssp-revenue close --month 2026-10 --reissue" in corrected[0]["detail"]
    assert close.issues(env.services.s3, env.settings.bucket, OCTOBER) == [1]
    _, notices = world.run(dt.date(2026, 11, 14))
    assert pages(notices, Reason.STATEMENT_CORRECTED) == []
    again = close.close_month(OCTOBER, names, settings=env.settings, s3=env.services.s3,
                              catalog=env.services.catalog, inputs=inputs, now=env.clock.now(), reissue=True)
    assert again.issue == 2 and again.manifest["statements"] == {"adpulse": "adpulse-2026-10-2"}
    _, notices = world.run(dt.date(2026, 11, 15))
    assert [n["reason"] for n in notices if n["event"] == "resolved"] == [Reason.STATEMENT_CORRECTED.value]

    # xchange's late statement (overdue since Nov 8): the closed month is reissued by itself,
    # once, byte-stable.
    _, notices = world.run(dt.date(2026, 11, 21))
    assert [n["reason"] for n in notices if n["event"] == "resolved"] == [Reason.STATEMENT_OVERDUE.value]
    assert close.issues(env.services.s3, env.settings.bucket, OCTOBER) == [1, 2, 3]
    body, manifest = close.read_issue(env.services.s3, env.settings.bucket, OCTOBER, 3)
    assert manifest["statements"] == {"adpulse": "adpulse-2026-10-2", "xchange": "xchange-2026-10-1"}
    assert manifest["replaces_issue"] == 2
    world.run(dt.date(2026, 11, 22))
    assert close.issues(env.services.s3, env.settings.bucket, OCTOBER) == [1, 2, 3]
    same = close.close_month(OCTOBER, names, settings=env.settings, s3=env.services.s3,
                             catalog=env.services.catalog, inputs=inputs, now=env.clock.now())
    assert same.state == "already_closed" and same.csv == body
    for ssp in names:
        paid = int(world.reconciliation(ssp, OCTOBER)["paid_jpy"])
        assert sum(r["total_jpy"] for r in close.parse_csv(body) if r["ssp"] == ssp) == paid


def test_a_malformed_statement_publishes_nothing_and_pages_once(lake_settings: Any, emulator: Any) -> None:
    env = _env(lake_settings)
    _uploaded(env, "adpulse")
    world = Statements(env, emulator, ("adpulse",))
    world.plan("adpulse", OCTOBER, "malformed", defect="total")
    world.emulator.set_clock(at(dt.date(2026, 11, 6)))
    bad = world.statement_file("adpulse", OCTOBER)
    result, notices = world.load("adpulse", OCTOBER, bad)
    rejected = pages(notices, Reason.STATEMENT_REJECTED)
    assert result is None and len(rejected) == 1
    assert "do not add up" in rejected[0]["detail"] or "add up to" in rejected[0]["detail"]
    assert "ssp=adpulse" in rejected[0]["detail"] and "statements/raw/" in rejected[0]["detail"]
    assert env.services.catalog.get_partition("statements", OCTOBER.first.isoformat(), "adpulse") is None
    assert env.services.catalog.get_partition(trueup.TABLE, OCTOBER.first.isoformat(), "adpulse") is None
    assert len(lake_statements.rejected("adpulse", OCTOBER, s3=env.services.s3, bucket=env.settings.bucket)) == 1
    assert len(env.keys("statements/raw/")) == 1  # the raw body is kept

    _, notices = world.load("adpulse", OCTOBER, bad)  # the same file again: no second page
    assert pages(notices, Reason.STATEMENT_REJECTED) == []
    _, notices = world.run(dt.date(2026, 11, 7))
    assert notices == []

    world.plan("adpulse", OCTOBER, "ivt")
    result, notices = world.load("adpulse", OCTOBER, world.statement_file("adpulse", OCTOBER))
    assert result is not None and result.state == reconcile.WITHIN
    assert [n["reason"] for n in notices if n["event"] == "resolved"] == [Reason.STATEMENT_REJECTED.value]


def test_variance_beyond_tolerance_and_overdue_statements_open_once_and_resolve(
        lake_settings: Any, emulator: Any) -> None:
    env = _env(lake_settings)
    _uploaded(env, "xchange")
    world = Statements(env, emulator, ("adpulse", "xchange"))
    world.plan("adpulse", OCTOBER, "corrected", first_ivt_pct="8", ivt_pct="1", day=12)

    _, notices = world.run(dt.date(2026, 11, 6))
    variance = pages(notices, Reason.STATEMENT_VARIANCE)
    assert len(variance) == 1 and variance[0]["ssp"] == "adpulse"
    assert "tolerance 5%" in variance[0]["detail"] and "No true-up booked" in variance[0]["detail"]
    assert env.services.catalog.get_partition(trueup.TABLE, OCTOBER.first.isoformat(), "adpulse") is None
    assert world.reconciliation("adpulse", OCTOBER)["status"] == reconcile.BEYOND
    assert pages(notices, Reason.STATEMENT_OVERDUE) == []  # xchange: expected Nov 2, grace to Nov 7

    _, notices = world.run(dt.date(2026, 11, 8))
    assert pages(notices, Reason.STATEMENT_VARIANCE) == []
    overdue = pages(notices, Reason.STATEMENT_OVERDUE)
    assert len(overdue) == 1 and overdue[0]["ssp"] == "xchange" and "2026-11-02" in overdue[0]["detail"]
    _, notices = world.run(dt.date(2026, 11, 9))
    assert notices == []

    _, notices = world.run(dt.date(2026, 11, 13))  # the corrected statement: within tolerance
    assert [n["incident_id"] for n in notices if n["event"] == "resolved"] == [
        "adpulse.statement_variance.2026-10-01.1"]
    assert world.reconciliation("adpulse", OCTOBER)["status"] == reconcile.WITHIN
    world.load("xchange", OCTOBER, world.statement_file("xchange", OCTOBER))
    book = incidents.IncidentBook(env.services.s3, env.settings.bucket)
    assert [i.incident_id for i in book.open_incidents(["adpulse", "xchange"])] == []


def _tables(world: Statements, ssp: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for month in (OCTOBER, NOVEMBER):
        out[f"statements {month}"] = sorted(
            (r["statement_id"], r["line"], r["amount"], r["is_current"])
            for r in world.read("statements", schema.STATEMENTS, ssp, month))
        out[f"reconciliation {month}"] = [
            {k: v for k, v in r.items() if k != "reconciled_at"}
            for r in world.read(reconcile.TABLE, schema.STATEMENT_RECONCILIATION, ssp, month)]
        out[f"trueup {month}"] = world.read(trueup.TABLE, schema.ALLOCATION_TRUEUP, ssp, month)
    return out


def test_statements_out_of_order_end_in_the_same_tables_as_in_order(
        lake_settings: Any, emulator: Any) -> None:
    files: dict[str, bytes] = {}
    results = []
    for order in (("oct-1", "oct-2", "nov-1"), ("nov-1", "oct-2", "oct-1", "oct-2", "nov-1")):
        settings = dataclasses.replace(lake_settings, bucket=lake_settings.bucket + order[0][0],
                                       glue_database=lake_settings.glue_database + order[0][0])
        env = _env(settings)
        _uploaded(env, "adpulse")
        world = Statements(env, emulator, ("adpulse",))
        world.plan("adpulse", OCTOBER, "corrected", ivt_pct="0.7", day=12)
        if not files:
            world.emulator.set_clock(at(dt.date(2026, 12, 3)))
            files["nov-1"] = world.statement_file("adpulse", NOVEMBER)
            world.emulator.set_clock(at(dt.date(2026, 11, 6)))
            files["oct-1"] = world.statement_file("adpulse", OCTOBER)
            world.emulator.set_clock(at(dt.date(2026, 11, 13)))
            files["oct-2"] = world.statement_file("adpulse", OCTOBER)
        world.emulator.set_clock(at(dt.date(2026, 12, 4)))
        for name in order:
            world.load("adpulse", OCTOBER if name.startswith("oct") else NOVEMBER, files[name])
        results.append(_tables(world, "adpulse"))
    in_order, shuffled = results
    assert in_order["statements 2026-10"] == shuffled["statements 2026-10"]
    assert [r[3] for r in in_order["statements 2026-10"] if r[0] == "adpulse-2026-10-2"] == [True, True]
    assert in_order == shuffled
    assert in_order["trueup 2026-11"] and in_order["trueup 2026-10"]
