"""The monthly close and the report, on the real local stack, from frozen figures only."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import shutil
import subprocess  # nosec B404: headless Chromium renders the report
import tempfile
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ssp_revenue.allocate import close, report, tables
from ssp_revenue.allocate.rules import to_yen
from ssp_revenue.core import registry
from ssp_revenue.finalize import freeze
from ssp_revenue.operate.pipeline import run_ssp

from .conftest import Lake

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "include" / "config"
SSPS = ["adpulse", "nihon"]
MONTH = close.Month(2026, 11)
FIRST = dt.date(2026, 11, 27)  # go-live: the month's dates are Nov 27-30
TOKYO = ZoneInfo("Asia/Tokyo")


def run_at(env: Lake, emulator: Any, day: dt.date, hour: int = 11) -> None:
    emulator.set_clock(dt.datetime.combine(day, dt.time(hour), tzinfo=TOKYO).astimezone(dt.UTC))
    dates = [FIRST + dt.timedelta(days=n) for n in range(4)]
    for ssp in SSPS:
        run_ssp(registry.find(env.registry, ssp), dates, env.connector(ssp=ssp), env.services)


@pytest.fixture
def month_env(lake_settings: Any, emulator: Any) -> Lake:
    return Lake(dataclasses.replace(lake_settings, start_date=FIRST))


def close_now(env: Lake, inputs: tables.AllocationInputs, reissue: bool = False) -> close.Issue:
    return close.close_month(MONTH, SSPS, settings=env.settings, s3=env.services.s3,
                             catalog=env.services.catalog, inputs=inputs, now=env.clock.now(),
                             reissue=reissue)


class Totals(HTMLParser):
    """Rows of the report's totals table, as the browser left the DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", "totals") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def render_in_chromium(page: Path) -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium is installed by `make test` (make browser)"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(  # nosec B603: fixed arguments, a local file
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        )
    return done.stdout


def test_a_month_closes_once_from_frozen_figures_and_its_report_matches(
    month_env: Lake, emulator: Any, tmp_path: Path
) -> None:
    env = month_env
    inputs = tables.AllocationInputs.from_config(CONFIG)
    for day in (dt.date(2026, 11, 29), dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 2)):
        run_at(env, emulator, day)

    # Nov 30 freezes at Dec 2 12:00 JST: at 11:00 the close refuses and says what is missing.
    with pytest.raises(close.NotClosable) as refused:
        close_now(env, inputs)
    assert refused.value.missing == ["adpulse 2026-11-30: not frozen", "nihon 2026-11-30: not frozen"]
    assert env.keys("closes/") == []

    run_at(env, emulator, dt.date(2026, 12, 3))
    first = close_now(env, inputs)
    assert (first.state, first.issue) == ("closed", 1)
    again = close_now(env, inputs)
    assert (again.state, again.issue, again.csv, again.manifest) == ("already_closed", 1, first.csv,
                                                                   first.manifest)
    # A statement computed afresh is byte-identical too.
    fresh = close.month_figures(MONTH, SSPS, settings=env.settings, s3=env.services.s3,
                            catalog=env.services.catalog, inputs=inputs)
    assert fresh.csv_bytes() == first.csv
    assert fresh.csv_bytes(bom=True) == b"\xef\xbb\xbf" + first.csv

    rows = close.parse_csv(first.csv)
    assert first.csv.startswith(b"# ssp-revenue monthly accounting export for 2026-11")
    assert first.manifest["row_count"] == len(rows)
    assert first.manifest["sha256"] == hashlib.sha256(first.csv).hexdigest()

    # frozen_jpy equals allocation_final; adjustments_jpy equals the batches detected in November.
    engine = env.engine()
    allocated = dict(engine.query(
        "SELECT ssp, sum(revenue_jpy) FROM allocation_final "
        "WHERE revenue_date BETWEEN DATE '2026-11-27' AND DATE '2026-11-30' GROUP BY ssp").rows)
    batches = engine.query(
        "SELECT ssp, revenue_date, sequence, currency, sum(revenue_delta), min(detected_at) "
        "FROM revenue_adjustments GROUP BY ssp, revenue_date, sequence, currency").rows
    booked: dict[str, int] = {}
    detected_in_november = 0
    for ssp, day, _, currency, delta, detected in batches:
        when = (detected if detected.tzinfo else detected.replace(tzinfo=dt.UTC)).astimezone(TOKYO)
        if (when.year, when.month) == (2026, 11):
            detected_in_november += 1
            booked[ssp] = booked.get(ssp, 0) + to_yen(Decimal(delta) * inputs.rates.rate(currency, day))
    assert detected_in_november > 0, "the emulator restates after the freeze within the month"
    for ssp in SSPS:
        mine = [r for r in rows if r["ssp"] == ssp]
        assert sum(r["frozen_jpy"] for r in mine) == allocated[ssp]
        assert sum(r["adjustments_jpy"] for r in mine) == booked.get(ssp, 0)
        assert all(r["total_jpy"] == r["frozen_jpy"] + r["adjustments_jpy"] for r in mine)
    assert first.manifest["totals_jpy"]["total_jpy"] == sum(r["total_jpy"] for r in rows)

    # The report renders in headless Chromium without errors; its table is the CSV.
    page = tmp_path / "report.html"
    page.write_text(report.render(MONTH, SSPS, rows, status="Closed, issue 1", settings=env.settings,
                                  s3=env.services.s3, catalog=env.services.catalog, inputs=inputs,
                                  as_of=env.clock.now()), encoding="utf-8")
    text = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text), "self-contained: nothing to fetch"
    dom = render_in_chromium(page)
    assert "data-errors" not in dom.split(">", 2)[1], "the page raised a JavaScript error"
    plots = re.search(r'data-plots="(\d+)"', dom)
    assert plots and int(plots.group(1)) >= 4, "every chart drew"
    table = Totals()
    table.feed(dom)
    body = [r for r in table.rows if r and r[0] != "Total"]
    assert [[r["target"], r["ssp"]] + [f"{r[c]:,}" for c in close.COLUMNS[2:]] for r in rows] == body
    footer = next(r for r in table.rows if r and r[0] == "Total")
    assert footer[2:] == [f"{first.manifest['totals_jpy'][c]:,}" for c in close.COLUMNS[2:]]

    # New rules recomputed after the close: closing again refuses, then --reissue numbers it.
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with (config / "allocation_rules.csv").open("a") as rules:
        rules.write("2026-11-01,*,news,*,partner:acme,100\n")
    moved = tables.AllocationInputs.from_config(config)
    for ssp in SSPS:
        entry = freeze.read_ledger(env.services.s3, env.settings.bucket, ssp, FIRST)
        assert entry is not None
        tables.recompute(entry, inputs=moved, s3=env.services.s3, catalog=env.services.catalog,
                             now=env.clock.now())
    with pytest.raises(close.NotClosable, match="--reissue") as changed:
        close_now(env, moved)
    assert any("partner:acme" in line for line in changed.value.missing)
    second = close_now(env, moved, reissue=True)
    assert (second.state, second.issue) == ("reissued", 2) and second.manifest["replaces_issue"] == 1
    assert second.manifest["replaces_sha256"] == first.manifest["sha256"]
    assert close.read_issue(env.services.s3, env.settings.bucket, MONTH, 1)[0] == first.csv
    assert close.issues(env.services.s3, env.settings.bucket, MONTH) == [1, 2]
