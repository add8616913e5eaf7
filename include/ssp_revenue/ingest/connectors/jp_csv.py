"""Japanese-SSP CSV exports, now a described style (include/config/styles/jp_csv.yaml).

Consumption tax (when the SSP's ``options.tax_inclusive`` is true): each row's
amount excluding tax = amount x 100 / 110, rounded half-to-even to 6 decimal
places. The totals row is checked against the rows *before* the tax is
stripped, i.e. on the figures exactly as the SSP stated them. This module only
names the described connector for the code and tests that import it by name.
"""

from __future__ import annotations

import decimal

from ssp_revenue.core.styles import StyleError, load_style
from ssp_revenue.ingest.connectors.declarative import DeclarativeConnector, connector_for, strip_tax

_STYLE = load_style("jp_csv")
if _STYLE is None or _STYLE.column("revenue") is None:  # the description ships with the library
    raise StyleError("include/config/styles/jp_csv.yaml is missing")
JpCsvConnector: type[DeclarativeConnector] = connector_for(_STYLE)
TAX_RATE = next(c.tax.rate for c in _STYLE.columns if c.tax is not None)


def strip_consumption_tax(gross: decimal.Decimal) -> decimal.Decimal:
    return strip_tax(gross, TAX_RATE)
