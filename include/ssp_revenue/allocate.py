"""Allocation rules (owned by the business team) and the exact split of frozen revenue.

Rules file: include/config/allocation_rules.csv, one row per (effective_from,
ssp, media, ad_unit, target) with ``share_pct``; ``*`` matches any SSP, media or
ad unit; the most specific matching pattern wins. For one effective date, the
shares of one (ssp, media, ad_unit) pattern add up to 100, no two patterns of equal
specificity overlap, and every target is declared in allocation_targets.csv.
A pattern's rules apply from their effective_from until the same pattern gets
rules with a later one (so last month is recomputed with last month's rules).

Money is split in whole yen by the largest-remainder method: each target gets
the floor of its exact share, and the yen left over go one each to the targets
with the largest remainders (ties: target name), so the parts add up exactly to
the total, whatever the order of the inputs.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import hashlib
from collections.abc import Mapping
from pathlib import Path

RULE_COLUMNS = ("effective_from", "ssp", "media", "ad_unit", "target", "share_pct")
HUNDRED = decimal.Decimal(100)


class RulesError(ValueError):
    """Every problem in a rules file, each with its line number."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))


@dataclasses.dataclass(frozen=True)
class Rule:
    line: int
    effective_from: dt.date
    ssp: str
    media: str
    ad_unit: str
    target: str
    share: decimal.Decimal

    @property
    def pattern(self) -> tuple[str, str, str]:
        return (self.ssp, self.media, self.ad_unit)

    @property
    def specificity(self) -> int:
        return sum(part != "*" for part in self.pattern)

    def matches(self, ssp: str, media: str, ad_unit: str) -> bool:
        return all(p in ("*", v) for p, v in zip(self.pattern, (ssp, media, ad_unit), strict=True))


@dataclasses.dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]
    version: str  # sha256 of the rules file: recorded on every allocated row

    def in_effect(self, day: dt.date) -> list[Rule]:
        """For each (ssp, media, ad_unit) pattern, its rules with the newest effective_from <= day."""
        newest: dict[tuple[str, str, str], dt.date] = {}
        for rule in self.rules:
            if rule.effective_from <= day and rule.effective_from > newest.get(rule.pattern, dt.date.min):
                newest[rule.pattern] = rule.effective_from
        return [r for r in self.rules if newest.get(r.pattern) == r.effective_from]

    def split_for(self, day: dt.date, ssp: str, media: str, ad_unit: str) -> dict[str, decimal.Decimal]:
        """target -> share (percent) for one ad unit on one day: the most specific pattern wins."""
        candidates = [r for r in self.in_effect(day) if r.matches(ssp, media, ad_unit)]
        if not candidates:
            raise LookupError(f"no allocation rule for ssp={ssp} media={media} ad_unit={ad_unit} on {day}")
        best = max(r.specificity for r in candidates)
        chosen = [r for r in candidates if r.specificity == best]
        return {r.target: r.share for r in chosen}


def load_targets(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["target"].strip() for row in csv.DictReader(handle)}


def load_rules(path: Path, targets: set[str]) -> RuleBook:
    """Parse and check the whole file; raise RulesError listing every bad line."""
    body = path.read_bytes()
    problems: list[str] = []
    rules: list[Rule] = []
    reader = csv.reader(body.decode("utf-8-sig").splitlines())
    header = [h.strip() for h in next(reader, [])]
    if tuple(header) != RULE_COLUMNS:
        raise RulesError(path, [f"line 1: header must be {','.join(RULE_COLUMNS)}, got {','.join(header)}"])
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(RULE_COLUMNS):
            problems.append(f"line {line}: {len(cells)} cells, expected {len(RULE_COLUMNS)}")
            continue
        values = dict(zip(RULE_COLUMNS, (c.strip() for c in cells), strict=True))
        try:
            effective = dt.date.fromisoformat(values["effective_from"])
        except ValueError:
            problems.append(f"line {line}: effective_from {values['effective_from']!r} is not YYYY-MM-DD")
            continue
        try:
            share = decimal.Decimal(values["share_pct"])
        except decimal.InvalidOperation:
            problems.append(f"line {line}: share_pct {values['share_pct']!r} is not a number")
            continue
        if not share.is_finite() or share <= 0 or share > HUNDRED:
            problems.append(f"line {line}: share_pct {share} must be > 0 and <= 100")
            continue
        if values["target"] not in targets:
            problems.append(f"line {line}: unknown target {values['target']!r}")
            continue
        if not all(values[k] for k in ("ssp", "media", "ad_unit")):
            problems.append(f"line {line}: ssp, media and ad_unit must be a name or *")
            continue
        rules.append(Rule(line, effective, values["ssp"], values["media"], values["ad_unit"],
                          values["target"], share))
    groups: dict[tuple[dt.date, tuple[str, str, str]], list[Rule]] = {}
    for rule in rules:
        groups.setdefault((rule.effective_from, rule.pattern), []).append(rule)
    for (effective, pattern), group in sorted(groups.items()):
        total = sum((r.share for r in group), decimal.Decimal(0))
        first = min(r.line for r in group)
        if total != HUNDRED:
            problems.append(f"line {first}: shares for {'/'.join(pattern)} from {effective} add up to "
                            f"{total}%, not 100% (lines {', '.join(str(r.line) for r in group)})")
        seen: dict[str, int] = {}
        for rule in group:
            if rule.target in seen:
                problems.append(f"line {rule.line}: target {rule.target} repeats line {seen[rule.target]}")
            seen[rule.target] = rule.line
    by_date: dict[dt.date, list[tuple[str, str, str]]] = {}
    for effective, pattern in groups:
        by_date.setdefault(effective, []).append(pattern)
    for effective, patterns in by_date.items():
        for i, a in enumerate(patterns):
            for b in patterns[i + 1:]:
                same_rank = sum(p != "*" for p in a) == sum(p != "*" for p in b)
                if same_rank and all(x == y or "*" in (x, y) for x, y in zip(a, b, strict=True)):
                    line = groups[(effective, b)][0].line
                    problems.append(f"line {line}: {'/'.join(b)} overlaps {'/'.join(a)} from {effective} "
                                    "with equal specificity: say which wins with a more specific rule")
    if problems:
        raise RulesError(path, sorted(problems, key=lambda p: int(p.split()[1].rstrip(":"))))
    return RuleBook(tuple(rules), hashlib.sha256(body).hexdigest()[:16])


def largest_remainder(total_yen: int, shares: Mapping[str, decimal.Decimal]) -> dict[str, int]:
    """Split whole yen by shares so the parts add up exactly to the total.

    Negative totals (a downward adjustment) are split as their absolute value and
    negated, so a target's part always has the sign of the total.
    """
    if not shares:
        raise ValueError("no shares to split by")
    if any(s < 0 for s in shares.values()):
        raise ValueError("shares must not be negative")
    weight = sum(shares.values(), decimal.Decimal(0))
    if weight <= 0:
        raise ValueError("shares add up to zero")
    sign = -1 if total_yen < 0 else 1
    amount = abs(total_yen)
    exact = {t: decimal.Decimal(amount) * s / weight for t, s in shares.items()}
    parts = {t: int(v) for t, v in exact.items()}  # floor: values are non-negative
    left = amount - sum(parts.values())
    order = sorted(exact, key=lambda t: (-(exact[t] - parts[t]), t))
    for target in order[:left]:
        parts[target] += 1
    return {t: sign * v for t, v in sorted(parts.items())}


ALLOCATION_COLUMNS = (
    "revenue_date", "ssp", "target", "revenue_jpy", "currency", "fx_rate", "rules_version",
    "source_version",
)


def allocate_day(
    rows: list[Mapping[str, object]],
    *,
    ssp: str,
    day: dt.date,
    book: RuleBook,
    rate: decimal.Decimal,
    source_version: str,
) -> list[dict[str, object]]:
    """Split one frozen (SSP, date) between targets, in whole yen.

    The day's total in yen is the exact JPY sum of its rows (amount x rate),
    rounded half-to-even; it is split by the largest-remainder method with each
    target's exact JPY share as its weight, so the targets add up to it exactly.
    Raises LookupError naming the first ad unit no rule covers.
    """
    weights: dict[str, decimal.Decimal] = {}
    currencies: set[str] = set()
    exact_total = decimal.Decimal(0)
    for row in rows:
        amount = decimal.Decimal(str(row["revenue"])) * rate
        exact_total += amount
        currencies.add(str(row["currency"]))
        split = book.split_for(day, ssp, str(row["media"]), str(row["ad_unit"]))
        for target, share in split.items():
            weights[target] = weights.get(target, decimal.Decimal(0)) + amount * share / HUNDRED
    if not weights:
        return []
    total_yen = int(exact_total.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_EVEN))
    positive = {t: max(w, decimal.Decimal(0)) for t, w in weights.items()}
    if sum(positive.values(), decimal.Decimal(0)) == 0:
        positive = {t: decimal.Decimal(1) for t in weights}
    parts = largest_remainder(total_yen, positive)
    currency = ",".join(sorted(currencies))
    return [
        {"revenue_date": day, "ssp": ssp, "target": target, "revenue_jpy": yen, "currency": currency,
         "fx_rate": rate, "rules_version": book.version, "source_version": source_version}
        for target, yen in parts.items()
    ]
