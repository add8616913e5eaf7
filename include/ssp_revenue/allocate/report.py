"""The month as the business team sees it: one self-contained HTML file.

Charts are Plotly figures with plotly.js inlined once, so the file opens with no
network. Figures come from the lake only: allocation_final (yen by SSP and by
target), publish_log and the freeze ledger (how far the first published figure
moved before the freeze), adjustment batches (by month of detection), and the
month's accounting statement, whose rows the totals table shows exactly as in
the CSV; and per SSP, what it reported against what its monthly statement pays.
"""

from __future__ import annotations

import datetime as dt
import decimal
import html
from typing import Any

import plotly.colors
import plotly.graph_objects as go
import plotly.offline

from ssp_revenue.allocate import reconcile, tables
from ssp_revenue.allocate.close import COLUMNS, Month, adjustments_detected
from ssp_revenue.allocate.rules import to_yen
from ssp_revenue.core import calendar
from ssp_revenue.core.settings import Settings
from ssp_revenue.finalize import freeze
from ssp_revenue.lake import publish, store
from ssp_revenue.lake.catalog import GlueCatalog

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>SSP revenue {month}</title>
<script>
window.reportErrors = [];
window.addEventListener("error", function (e) {{
  window.reportErrors.push(String(e.message));
  document.documentElement.setAttribute("data-errors", window.reportErrors.join(" | "));
}});
</script>
<script>{plotlyjs}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1200px; }}
h1 {{ margin-bottom: 0.2rem; }} .sub {{ color: #666; margin-top: 0; }}
.kpis {{ display: flex; gap: 1rem; margin: 1rem 0; }}
.kpi {{ background: #f4f6f8; padding: 0.8rem 1.2rem; border-radius: 6px; }}
.kpi b {{ display: block; font-size: 1.4rem; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 0.5rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }}
th:nth-child(-n+2), td:nth-child(-n+2) {{ text-align: left; }}
tfoot td {{ font-weight: bold; border-top: 2px solid #222; }}
</style></head>
<body>
<h1>SSP revenue, {month}</h1>
<p class="sub">{status}. Frozen figures only; amounts in JPY. Generated from the lake as of {as_of}.</p>
<div class="kpis">{kpis}</div>
{charts}
<h2>Reported and paid (the SSPs' monthly statements)</h2>
<table id="paid"><thead><tr><th>ssp</th><th>statement</th><th>reported_jpy</th><th>paid_jpy</th>
<th>variance_jpy</th><th>variance</th><th>status</th></tr></thead><tbody>
{paid}
</tbody></table>
<h2>Month totals (as in the accounting CSV)</h2>
<table id="totals"><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody><tfoot><tr><td>Total</td><td></td>{foot}</tr></tfoot></table>
<script>
document.documentElement.setAttribute("data-plots",
  String(document.querySelectorAll(".js-plotly-plot .main-svg").length));
</script>
</body></html>
"""


def _figure_html(figure: go.Figure, title: str) -> str:
    figure.update_layout(title=title, height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                         legend={"orientation": "h"})
    return str(figure.to_html(full_html=False, include_plotlyjs=False))


def palette(names: list[str]) -> dict[str, str]:
    """One colour per name, the same in every chart."""
    colours = plotly.colors.qualitative.Plotly
    return {name: colours[i % len(colours)] for i, name in enumerate(sorted(names))}


def _stacked(series: dict[str, dict[dt.date, int]], dates: list[dt.date], title: str,
             colours: dict[str, str] | None = None) -> str:
    figure = go.Figure()
    colours = colours or palette(list(series))
    for name in sorted(series):
        figure.add_bar(name=name, x=[d.isoformat() for d in dates],
                       y=[series[name].get(d, 0) for d in dates], marker_color=colours.get(name))
    figure.update_layout(barmode="stack", yaxis_title="JPY")
    return _figure_html(figure, title)


def drift(ssp: str, day: dt.date, s3: Any, catalog: GlueCatalog) -> float | None:
    """Percent the frozen revenue differs from the first version published for the date."""
    entry = freeze.read_ledger(s3, catalog.bucket, ssp, day)
    log = publish.read_publish_log(s3, catalog, ssp, day)
    if entry is None or log.num_rows == 0:
        return None
    first = decimal.Decimal(log["revenue"][0].as_py())
    if first == 0:
        return None
    return float((decimal.Decimal(entry.revenue) - first) / first * 100)


def render(
    month: Month, ssps: list[str], rows: list[dict[str, Any]], *, status: str, settings: Settings,
    s3: Any, catalog: GlueCatalog, inputs: tables.AllocationInputs, as_of: dt.datetime,
    history_months: int = 6,
) -> str:
    """The report for a month whose statement ``rows`` (from its close) are given."""
    dates = month.dates(settings.start_date)
    pairs = [(ssp, day) for ssp in ssps for day in dates]
    by_ssp: dict[str, dict[dt.date, int]] = {}
    by_target: dict[str, dict[dt.date, int]] = {}
    read = store.read_each(lambda pair: tables.read_day(*pair, s3=s3, catalog=catalog), pairs)
    for (ssp, day), allocated in zip(pairs, read, strict=True):
        for row in allocated[1].to_pylist() if allocated else []:
            yen = int(row["revenue_jpy"])
            per_ssp = by_ssp.setdefault(ssp, {})
            per_ssp[day] = per_ssp.get(day, 0) + yen
            per_target = by_target.setdefault(row["target"], {})
            per_target[day] = per_target.get(day, 0) + yen

    colours = palette(ssps)
    figure = go.Figure()
    drifts = dict(zip(pairs, store.read_each(lambda pair: drift(*pair, s3, catalog), pairs), strict=True))
    for ssp in sorted(ssps):
        points = [(d, drifts[(ssp, d)]) for d in dates]
        known = [(d.isoformat(), v) for d, v in points if v is not None]
        figure.add_scatter(name=ssp, mode="lines+markers", x=[d for d, _ in known], y=[v for _, v in known],
                           line_color=colours[ssp])
    figure.update_layout(yaxis_title="% frozen vs first published")
    drift_html = _figure_html(figure, "Preliminary versus final: how far each date moved before freezing")

    months = [month]
    while len(months) < history_months:
        m = months[0]
        months.insert(0, Month.before(m.first))
    start = calendar.date_start(months[0].first, settings.tz)
    end = calendar.date_start(month.next().first, settings.tz)
    booked: dict[str, dict[str, int]] = {}
    for ssp, day, _, batch in adjustments_detected(
            (start, end), ssps, settings=settings, s3=s3, catalog=catalog,
            earliest=months[0].first - dt.timedelta(days=settings.adjustment_days + 3)):
        when = batch["detected_at"][0].as_py().astimezone(settings.tz)
        key = f"{when.year:04d}-{when.month:02d}"
        rate = inputs.rates.rate(str(batch["currency"][0].as_py()), day)
        total = sum((decimal.Decimal(v) for v in batch["revenue_delta"].to_pylist()), decimal.Decimal(0))
        booked.setdefault(ssp, {})[key] = booked.get(ssp, {}).get(key, 0) + to_yen(total * rate)
    figure = go.Figure()
    # Only the months with data: from the first with a booking (or the deployment's start) on.
    labels = [str(m) for m in months]
    detected = {m for per_ssp in booked.values() for m, yen in per_ssp.items() if yen}
    first_data = min([*detected, *([f"{settings.start_date:%Y-%m}"] if settings.start_date else []),
                      str(month)])
    labels = [m for m in labels if m >= first_data]
    for ssp in sorted(booked):
        figure.add_bar(name=ssp, x=labels, y=[booked[ssp].get(m, 0) for m in labels],
                       marker_color=colours.get(ssp))
    figure.update_layout(barmode="relative", yaxis_title="JPY", xaxis_type="category")
    adjust_html = _figure_html(figure, "Adjustments (restatements after the freeze) by month detected")

    charts = "\n".join([
        _stacked(by_ssp, dates, "Daily frozen revenue by SSP", colours),
        _stacked(by_target, dates, "Daily frozen revenue by allocation target"),
        drift_html, adjust_html,
    ])
    paid = "\n".join(_paid_row(ssp, reconcile.recorded(month, ssp, s3=s3, catalog=catalog))
                     for ssp in sorted(ssps))
    totals = {c: sum(int(r[c]) for r in rows) for c in COLUMNS[2:]}
    kpis = "".join(f'<div class="kpi">{html.escape(c)}<b>¥{v:,}</b></div>' for c, v in totals.items())
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in COLUMNS[:2])
        + "".join(f'<td data-yen="{int(r[c])}">{int(r[c]):,}</td>' for c in COLUMNS[2:]) + "</tr>"
        for r in rows
    )
    return PAGE.format(
        month=month, status=html.escape(status), as_of=as_of.isoformat(timespec="seconds"), kpis=kpis,
        plotlyjs=plotly.offline.get_plotlyjs(), charts=charts,
        head="".join(f"<th>{c}</th>" for c in COLUMNS), body=body,
        foot="".join(f'<td data-yen="{totals[c]}">{totals[c]:,}</td>' for c in COLUMNS[2:]), paid=paid,
    )


def _paid_row(ssp: str, found: dict[str, Any] | None) -> str:
    if found is None:
        return (f"<tr><td>{html.escape(ssp)}</td><td>awaiting statement</td><td></td><td></td><td></td>"
                "<td></td><td>awaiting</td></tr>")
    cells = [html.escape(ssp), html.escape(str(found["statement_id"]))]
    yen = [f'<td data-yen="{int(found[c])}">{int(found[c]):,}</td>'
           for c in ("reported_jpy", "paid_jpy", "variance_jpy")]
    share = f"{decimal.Decimal(found['variance_share']) * 100:.2f}%"
    return ("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "".join(yen)
            + f"<td>{share}</td><td>{html.escape(str(found['status']))}</td></tr>")
