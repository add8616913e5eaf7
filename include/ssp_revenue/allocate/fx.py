"""Daily FX rates to JPY: a table per (date, currency), never a guess.

The sample table is include/config/fx_rates.csv (date, currency, jpy_per_unit,
source). A real rate source plugs in as another ``RateSource``; whatever the
source, a missing rate raises ``MissingRate`` and keeps that date out of
allocation (converging until its cutoff, then actionable).
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from pathlib import Path
from typing import Protocol

from ssp_revenue.core.errors import PipelineError, Reason


class MissingRate(PipelineError):
    reason = Reason.MISSING_REFERENCE


class RateSource(Protocol):
    def rate(self, currency: str, day: dt.date) -> decimal.Decimal:
        """JPY per one unit of ``currency`` on ``day``."""
        ...


class CsvRates:
    """Rates from a CSV file; JPY is 1 by definition."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rates: dict[tuple[dt.date, str], decimal.Decimal] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    value = decimal.Decimal(row["jpy_per_unit"])
                    key = (dt.date.fromisoformat(row["date"]), row["currency"].strip().upper())
                except (KeyError, ValueError, decimal.InvalidOperation) as exc:
                    raise ValueError(f"{path}: line {line}: {exc}") from None
                if not value.is_finite() or value <= 0:
                    raise ValueError(f"{path}: line {line}: rate must be positive, got {value}")
                self._rates[key] = value

    def rate(self, currency: str, day: dt.date) -> decimal.Decimal:
        if currency == "JPY":
            return decimal.Decimal(1)
        try:
            return self._rates[(day, currency)]
        except KeyError:
            raise MissingRate(f"no {currency}/JPY rate for {day} in {self.path.name}",
                              revenue_date=day) from None
