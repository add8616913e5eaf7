"""First-party delivery metrics: what "split by share of impressions" is a share of.

Our own ad server knows, per day, how many impressions of a shared ad unit it
delivered for each allocation target. The sample is
include/config/delivery_sample.csv (date, media, ad_unit, target, impressions,
clicks); ``ad_unit`` may be ``*`` for every ad unit of the media. A real table
plugs in as another ``DeliverySource``. A missing metric raises
``MissingDelivery``: the date stays out of allocation, never guessed.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
from pathlib import Path
from typing import Protocol

from ssp_revenue.core.errors import PipelineError, Reason

METRICS = ("impressions", "clicks")


class MissingDelivery(PipelineError):
    reason = Reason.MISSING_REFERENCE


class DeliverySource(Protocol):
    def metric(
        self, day: dt.date, media: str, ad_unit: str, target: str, metric: str
    ) -> decimal.Decimal | None:
        """The delivered amount of ``metric`` for a target, or None when the source has no row."""
        ...


class CsvDelivery:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[tuple[dt.date, str, str, str], dict[str, decimal.Decimal]] = {}
        if not path.exists():
            return
        with path.open(encoding="utf-8", newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    key = (dt.date.fromisoformat(row["date"]), row["media"].strip(),
                           row["ad_unit"].strip(), row["target"].strip())
                    values = {m: decimal.Decimal(row[m]) for m in METRICS}
                except (KeyError, ValueError, decimal.InvalidOperation) as exc:
                    raise ValueError(f"{path}: line {line}: {exc!r}") from None
                if any(not v.is_finite() or v < 0 for v in values.values()):
                    raise ValueError(f"{path}: line {line}: metrics must be non-negative numbers")
                self._rows[key] = values

    def metric(
        self, day: dt.date, media: str, ad_unit: str, target: str, metric: str
    ) -> decimal.Decimal | None:
        for unit in (ad_unit, "*"):
            found = self._rows.get((day, media, unit, target))
            if found is not None:
                return found[metric]
        return None
