"""The SSP registry (include/config/ssps.yaml): which SSPs we collect from, and how."""

from __future__ import annotations

import dataclasses
import decimal
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from ssp_revenue.core import yaml_text
from ssp_revenue.core.calendar import Availability
from ssp_revenue.core.schema import TZ_POLICIES

NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


STATEMENT_SOURCES = ("api", "file_drop", "upload")
STATEMENT_FORMATS = ("json", "csv")


@dataclasses.dataclass(frozen=True)
class StatementTerms:
    """How an SSP's monthly statement arrives and how far it may differ from what we froze."""

    source: str  # api: its report API serves it; file_drop: its bucket; upload: an operator loads it
    account: str  # our publisher account at the SSP: a statement for another is refused
    expected_day: int = 2  # day of the next month it is normally issued (business zone)
    grace_days: int = 5  # after expected_day, then overdue
    tolerance_pct: decimal.Decimal = decimal.Decimal(5)  # |variance| / reported within this: a true-up
    format: str = "json"

    @classmethod
    def parse(cls, where: str, data: object) -> StatementTerms:
        if not isinstance(data, dict):
            raise RegistryError(f"{where}: statement: expected a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RegistryError(f"{where}: statement: unknown keys {sorted(unknown)}")
        values = dict(data)
        try:
            values["tolerance_pct"] = decimal.Decimal(str(values.get("tolerance_pct", 5)))
            terms = cls(**values)
        except (TypeError, decimal.InvalidOperation) as exc:
            raise RegistryError(f"{where}: statement: {exc}") from None
        if terms.source not in STATEMENT_SOURCES:
            raise RegistryError(f"{where}: statement.source {terms.source!r} not one of {STATEMENT_SOURCES}")
        if terms.format not in STATEMENT_FORMATS:
            raise RegistryError(f"{where}: statement.format {terms.format!r} not in {STATEMENT_FORMATS}")
        if not 1 <= int(terms.expected_day) <= 28 or int(terms.grace_days) < 0:
            raise RegistryError(f"{where}: statement.expected_day must be 1..28 and grace_days >= 0")
        if not decimal.Decimal(0) <= terms.tolerance_pct <= decimal.Decimal(100):
            raise RegistryError(f"{where}: statement.tolerance_pct must be 0..100")
        if not terms.account:
            raise RegistryError(f"{where}: statement.account is required")
        return terms


@dataclasses.dataclass(frozen=True)
class SspConfig:
    name: str
    style: str
    connection_id: str
    timezone: str
    currency: str
    restatement_horizon_hours: int = 48
    # When the report for date D is normally complete: "D+1 08:00" (business
    # zone) or "D+1 21:00 Asia/Tokyo". Chance runs start then (ssp_revenue.operate.schedule).
    available_after: str = "D+1 06:00"
    # business_zone: reports already in the business zone; hourly_rebucketed: hourly
    # rows re-bucketed into business dates; ssp_date: the SSP's day booked as the
    # business day of the same date (daily-only reports in another zone).
    tz_policy: str = "business_zone"
    options: dict[str, object] = dataclasses.field(default_factory=dict)
    statement: StatementTerms | None = None  # None: no monthly statement is reconciled

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RegistryError(ValueError):
    pass


def load_registry(path: Path) -> list[SspConfig]:
    data = yaml_text.load(path.read_text()) or {}
    entries = data.get("ssps")
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{path}: expected a non-empty 'ssps' list")
    known = {f.name for f in dataclasses.fields(SspConfig)}
    seen: set[str] = set()
    out: list[SspConfig] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: ssps[{index}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where}: expected a mapping")
        unknown = set(entry) - known
        if unknown:
            raise RegistryError(f"{where}: unknown keys {sorted(unknown)}")
        if "statement" in entry:
            entry = {**entry, "statement": StatementTerms.parse(where, entry["statement"])}
        try:
            config = SspConfig(**entry)
        except TypeError as exc:
            raise RegistryError(f"{where}: {exc}") from None
        if not NAME.match(config.name):
            raise RegistryError(f"{where}: name {config.name!r} must match {NAME.pattern}")
        if config.name in seen:
            raise RegistryError(f"{where}: duplicate ssp {config.name!r}")
        if not CURRENCY.match(config.currency):
            raise RegistryError(f"{where}: currency {config.currency!r} is not an ISO 4217 code")
        try:
            config.tz  # noqa: B018 - validates the zone name
        except Exception:
            raise RegistryError(f"{where}: unknown time zone {config.timezone!r}") from None
        try:
            Availability.parse(config.available_after)
        except ValueError as exc:
            raise RegistryError(f"{where}: {exc}") from None
        if config.tz_policy not in TZ_POLICIES:
            raise RegistryError(f"{where}: tz_policy {config.tz_policy!r} is not one of {TZ_POLICIES}")
        seen.add(config.name)
        out.append(config)
    return out


def find(ssps: list[SspConfig], name: str) -> SspConfig:
    for config in ssps:
        if config.name == name:
            return config
    raise KeyError(f"ssp {name!r} is not in the registry; known: {[s.name for s in ssps]}")
