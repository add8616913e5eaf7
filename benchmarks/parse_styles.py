"""Reading a described report (jp_csv: Shift_JIS CSV, thousands separators, tax; rest_json: cursor
pages of hourly JSON rows): whole columns in Arrow against the cell-by-cell reader it falls
back to, on the same landed bodies, plus what fetching and landing a JSON report costs.

The bodies come from the emulator, served over HTTP by a server in this process, and are
fetched by the real connectors, so they are the bytes a task lands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.common import median, write_table
from benchmarks.session import rows_per_day

DAY = dt.date(2026, 6, 1)
SSPS = {"jp_csv": "nihon", "rest_json": "xchange"}


@contextlib.contextmanager
def _emulator(rows: int) -> Iterator[tuple[str, Any]]:
    from werkzeug.serving import make_server

    from ssp_emulator.app import create_app
    from ssp_emulator.state import EmulatorState

    state = EmulatorState(now=dt.datetime(2026, 6, 10, tzinfo=dt.UTC))
    for ssp in SSPS.values():
        state.profiles[ssp] = dataclasses.replace(state.profiles[ssp], rows=rows_per_day(ssp, rows),
                                                  rate_limit_per_window=0)
    server = make_server("127.0.0.1", 0, create_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()


@contextlib.contextmanager
def _cell_by_cell() -> Iterator[None]:
    """The whole-column readers switched off: every report goes to the exact reader."""
    from ssp_revenue.ingest.connectors import declarative

    saved = declarative._CsvColumns.read, declarative._json_columns
    declarative._CsvColumns.read = classmethod(lambda kind, *args: None)  # type: ignore[assignment,method-assign]
    declarative._json_columns = lambda spec, rows: None
    try:
        yield
    finally:
        declarative._CsvColumns.read, declarative._json_columns = saved  # type: ignore[method-assign]


def _as_served(envelope: dict[str, Any], served: list[bytes]) -> bytes:
    from ssp_revenue.ingest.connectors import declarative

    raw = declarative._envelope(envelope["start"], envelope["end"], envelope["business_tz"], served)
    return gzip.compress(raw, compresslevel=declarative.RAW_GZIP_LEVEL, mtime=0)


def _reserialised(envelope: dict[str, Any]) -> bytes:
    """What the connector landed before: the parsed pages serialised again, gzip's level 9."""
    return gzip.compress(json.dumps(envelope, sort_keys=True).encode(), mtime=0)


def _seconds(runs: int, work: Callable[[], Any]) -> list[float]:
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        spent.append(time.perf_counter() - started)
    return spent


def main(rows: int = 50_000, runs: int = 5) -> str:
    from ssp_revenue.core import registry
    from ssp_revenue.core.clock import FixedClock
    from ssp_revenue.core.settings import Settings
    from ssp_revenue.ingest.connectors import connector_class, declarative
    from ssp_revenue.ingest.credentials import emulator_credentials

    settings = Settings.from_env({})
    entries = registry.load_registry(settings.config_dir / "ssps.yaml")
    table: list[list[str]] = []
    with _emulator(rows) as (url, state):
        for style, ssp in SSPS.items():
            config = registry.find(entries, ssp)
            cls = connector_class(config.style)
            connector = cls(config, emulator_credentials(ssp, url), clock=FixedClock(state.now),
                            business_tz=settings.tz.key)
            fetched = connector.fetch(DAY)
            body = fetched.body.read()
            read = functools.partial(cls.parse, config, body, fetched.facts, DAY)
            parsed = read()
            fast = _seconds(runs, read)
            with _cell_by_cell():
                exact = read()
                slow = _seconds(runs, read)
            assert exact.table.equals(parsed.table) and exact.stated_totals == parsed.stated_totals
            table.append([f"{style} ({ssp}), parse: whole columns / cell by cell",
                          f"{parsed.table.num_rows:,}", f"{median(fast):.3f} / {median(slow):.3f}",
                          f"{median(slow) / median(fast):.1f}x", "same table and totals"])
            if style == "rest_json":
                pages = fetched.facts.get("pages")
                envelope = json.loads(gzip.decompress(body))
                served = [json.dumps(page).encode() for page in envelope["pages"]]
                hourly = sum(len(page["data"]) for page in envelope["pages"])
                table[-1][1] = f"{hourly:,} hourly -> {parsed.table.num_rows:,}"

                as_served = functools.partial(_as_served, envelope, served)
                reserialised = functools.partial(_reserialised, envelope)
                now, before = _seconds(runs, as_served), _seconds(runs, reserialised)
                table.append([f"{style} ({ssp}), the landed object of {pages} pages: as served, gzip level "
                              f"{declarative.RAW_GZIP_LEVEL} / re-serialised, level 9",
                              f"{hourly:,} hourly", f"{median(now):.3f} / {median(before):.3f}",
                              f"{median(before) / median(now):.1f}x",
                              f"{len(as_served()) / 1e6:.2f} / {len(reserialised()) / 1e6:.2f} MB"])
                spent = _seconds(runs, functools.partial(connector.fetch, DAY))
                table.append([f"{style} ({ssp}), the whole fetch: {pages} requests and the landed object",
                              f"{hourly:,} hourly", f"{median(spent):.3f}", "", ""])
    return write_table(
        "parse_styles", f"Reading a described report, {rows:,} report rows (median of {runs})",
        ["report", "rows", "seconds", "ratio", "check"], table,
        "The bodies are what the connector fetched from the emulator over HTTP (the same bytes a task "
        "lands). Cell by cell: the exact reader the whole-column one leaves anything to judge to "
        "(and that names a bad cell's row). Reproduce: `make bench ARGS='--only parse'`.")
