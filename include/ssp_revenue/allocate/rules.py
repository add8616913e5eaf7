"""Allocation rules (owned by the business team) and the exact split of frozen revenue.

Rules file: include/config/allocation_rules.csv, one row per (effective_from,
ssp, media, ad_unit, target) with ``share_pct``; ``*`` matches any SSP, media or
ad unit; the most specific matching pattern wins. ``share_pct`` is either a fixed
percentage or ``by:<metric>`` (``by:impressions``, ``by:clicks``): the ad unit is
split in proportion to what first-party delivery served each target that day.
For one effective date, the fixed shares of one (ssp, media, ad_unit) pattern add
up to 100 (or all its rules are by the same metric), no two patterns of equal
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
from collections.abc import Mapping, Sequence
from pathlib import Path

from ssp_revenue.allocate.delivery import METRICS, DeliverySource, MissingDelivery

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
    share: decimal.Decimal | None  # None: split by ``metric``
    metric: str | None = None

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
    # in_effect per day, worked out once: every ad unit of a day asks for it.
    _effective: dict[dt.date, list[Rule]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False)

    def in_effect(self, day: dt.date) -> list[Rule]:
        """For each (ssp, media, ad_unit) pattern, its rules with the newest effective_from <= day."""
        if day not in self._effective:
            newest: dict[tuple[str, str, str], dt.date] = {}
            for rule in self.rules:
                if rule.effective_from <= day and rule.effective_from > newest.get(rule.pattern, dt.date.min):
                    newest[rule.pattern] = rule.effective_from
            self._effective[day] = [r for r in self.rules if newest.get(r.pattern) == r.effective_from]
        return self._effective[day]

    def split_for(
        self, day: dt.date, ssp: str, media: str, ad_unit: str, delivery: DeliverySource | None = None
    ) -> dict[str, decimal.Decimal]:
        """target -> weight for one ad unit on one day: the most specific pattern wins.

        Fixed rules give percentages; by-metric rules give the delivered metric,
        and a target the delivery source knows nothing about raises MissingDelivery.
        """
        candidates = [r for r in self.in_effect(day) if r.matches(ssp, media, ad_unit)]
        if not candidates:
            raise LookupError(f"no allocation rule for ssp={ssp} media={media} ad_unit={ad_unit} on {day}")
        best = max(r.specificity for r in candidates)
        chosen = [r for r in candidates if r.specificity == best]
        weights: dict[str, decimal.Decimal] = {}
        for rule in chosen:
            if rule.share is not None:
                weights[rule.target] = rule.share
                continue
            assert rule.metric is not None
            found = delivery.metric(day, media, ad_unit, rule.target, rule.metric) if delivery else None
            if found is None:
                raise MissingDelivery(
                    f"no first-party {rule.metric} for {media}/{ad_unit} -> {rule.target} on {day} "
                    f"(rules line {rule.line} split by {rule.metric})", ssp=ssp, revenue_date=day)
            weights[rule.target] = found
        if sum(weights.values(), decimal.Decimal(0)) <= 0:
            raise MissingDelivery(f"first-party delivery for {media}/{ad_unit} on {day} is all zero",
                                  ssp=ssp, revenue_date=day)
        return weights


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
        share: decimal.Decimal | None = None
        metric: str | None = None
        if values["share_pct"].startswith("by:"):
            metric = values["share_pct"].removeprefix("by:")
            if metric not in METRICS:
                problems.append(f"line {line}: share_pct {values['share_pct']!r}: metric must be one of "
                                f"{', '.join('by:' + m for m in METRICS)}")
                continue
        else:
            try:
                share = decimal.Decimal(values["share_pct"])
            except decimal.InvalidOperation:
                problems.append(f"line {line}: share_pct {values['share_pct']!r} is not a number "
                                "or by:<metric>")
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
                          values["target"], share, metric))
    groups: dict[tuple[dt.date, tuple[str, str, str]], list[Rule]] = {}
    for rule in rules:
        groups.setdefault((rule.effective_from, rule.pattern), []).append(rule)
    for (effective, pattern), group in sorted(groups.items()):
        first = min(r.line for r in group)
        metrics = {r.metric for r in group}
        if len(metrics) > 1:
            problems.append(f"line {first}: rules for {'/'.join(pattern)} from {effective} mix "
                            f"{' and '.join(sorted(m or 'fixed shares' for m in metrics))} "
                            f"(lines {', '.join(str(r.line) for r in group)})")
            continue
        total = sum((r.share or decimal.Decimal(0) for r in group), decimal.Decimal(0))
        if None not in metrics and len(group) < 2:
            problems.append(f"line {first}: a split by metric for {'/'.join(pattern)} needs two or "
                            "more targets")
        elif None in metrics and total != HUNDRED:
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


def round_parts(total_yen: int, exact: Mapping[str, decimal.Decimal]) -> dict[str, int]:
    """Whole yen for exact (signed) amounts whose sum rounds to ``total_yen``.

    Largest remainder: each part is the floor of its exact amount; the yen left
    over go one each to the largest fractional remainders (ties: target name).
    """
    floors = {t: int(v.to_integral_value(rounding=decimal.ROUND_FLOOR)) for t, v in exact.items()}
    left = total_yen - sum(floors.values())
    if not 0 <= left <= len(exact):
        raise ValueError(f"{total_yen} yen cannot be the rounded sum of {dict(exact)}")
    order = sorted(exact, key=lambda t: (-(exact[t] - floors[t]), t))
    for target in order[:left]:
        floors[target] += 1
    return dict(sorted(floors.items()))


def to_yen(amount: decimal.Decimal) -> int:
    """A day's exact JPY total in whole yen: round half to even."""
    return int(amount.quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_EVEN))


def allocate_day(
    rows: Sequence[Mapping[str, object]],
    *,
    ssp: str,
    day: dt.date,
    book: RuleBook,
    rate: decimal.Decimal,
    delivery: DeliverySource | None = None,
    amount_column: str = "revenue",
) -> dict[str, int]:
    """Split one (SSP, date) between targets, in whole yen: target -> yen.

    ``rows`` carry media, ad_unit and an amount (aggregate them by ad unit first:
    the result is the same, the work is less). The day's total in yen is the
    exact JPY sum (amount x rate) rounded half-to-even; each target's exact JPY
    share is rounded by the largest remainder, so the targets add up to the total
    exactly and a target never gets a negative part from positive revenue.
    Raises LookupError naming an ad unit no rule covers, MissingDelivery when a
    by-metric split has no delivery figures.
    """
    effective = book.in_effect(day)
    unassigned = sorted({f"{row['media']}/{row['ad_unit']}" for row in rows
                         if not any(r.matches(ssp, str(row["media"]), str(row["ad_unit"]))
                                    for r in effective)})
    if unassigned:
        more = f" and {len(unassigned) - 10} more" if len(unassigned) > 10 else ""
        shown = ", ".join(unassigned[:10]) + more
        raise LookupError(f"rules {book.version} leave {len(unassigned)} ad unit(s) of {ssp} on {day} "
                          f"unassigned: {shown}")
    exact: dict[str, decimal.Decimal] = {}
    exact_total = decimal.Decimal(0)
    for row in rows:
        amount = decimal.Decimal(str(row[amount_column])) * rate
        exact_total += amount
        weights = book.split_for(day, ssp, str(row["media"]), str(row["ad_unit"]), delivery)
        weight_sum = sum(weights.values(), decimal.Decimal(0))
        for target, weight in weights.items():
            exact[target] = exact.get(target, decimal.Decimal(0)) + amount * weight / weight_sum
    if not exact:
        return {}
    return round_parts(to_yen(exact_total), exact)
