"""Allocation rules validation and the largest-remainder split."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssp_revenue.allocate.rules import RulesError, largest_remainder, load_rules, load_targets

CONFIG = Path(__file__).resolve().parents[2] / "include" / "config"
TARGETS = load_targets(CONFIG / "allocation_targets.csv")
HEADER = "effective_from,ssp,media,ad_unit,target,share_pct\n"

shares = st.dictionaries(
    st.sampled_from(sorted(TARGETS)), st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
    min_size=1, max_size=6)


@given(total=st.integers(min_value=-10**12, max_value=10**12), split=shares)
def test_parts_add_up_exactly_to_the_total(total: int, split: dict[str, Decimal]) -> None:
    assert sum(largest_remainder(total, split).values()) == total


@given(total=st.integers(min_value=0, max_value=10**12), split=shares)
def test_positive_revenue_never_gives_a_negative_part(total: int, split: dict[str, Decimal]) -> None:
    assert all(v >= 0 for v in largest_remainder(total, split).values())


@given(total=st.integers(min_value=-10**9, max_value=10**9), split=shares, seed=st.integers())
def test_the_result_does_not_depend_on_order(total: int, split: dict[str, Decimal], seed: int) -> None:
    items = list(split.items())
    random.Random(seed).shuffle(items)
    assert largest_remainder(total, dict(items)) == largest_remainder(total, split)


def test_remainders_go_to_the_largest_fractions() -> None:
    assert largest_remainder(100, {"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)}) == {
        "a": 34, "b": 33, "c": 33}
    assert largest_remainder(10, {"a": Decimal("66.6"), "b": Decimal("33.4")}) == {"a": 7, "b": 3}


def test_shipped_rules_load_and_change_on_their_effective_date() -> None:
    book = load_rules(CONFIG / "allocation_rules.csv", TARGETS)
    assert book.split_for(dt.date(2026, 10, 31), "adpulse", "tech", "tech_unit00001") == {
        "media:tech": Decimal(70), "partner:acme": Decimal(30)}
    assert book.split_for(dt.date(2026, 11, 1), "adpulse", "tech", "tech_unit00001") == {
        "media:tech": Decimal(60), "partner:acme": Decimal(40)}
    assert len(book.version) == 16


def test_a_header_that_is_not_the_schema_is_rejected_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text("from,ssp,media,ad_unit,target,share\n2026-01-01,*,news,*,media:news,100\n")
    with pytest.raises(RulesError, match="line 1: header"):
        load_rules(path, TARGETS)


@pytest.mark.parametrize("body,line,message", [
    ("2026-01-01,*,news,*,media:news,90\n", 2, "add up to 90%"),
    ("2026-01-01,*,news,*,media:nope,100\n", 2, "unknown target"),
    ("2026-13-01,*,news,*,media:news,100\n", 2, "not YYYY-MM-DD"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,*,news,*,media:news,0\n", 3, "must be > 0"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,adpulse,news,x,media:news\n", 3, "cells"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,adpulse,*,*,media:sports,100\n", 3, "overlaps"),
    ("2026-01-01,*,news,*,media:news,50\n2026-01-01,*,news,*,media:news,50\n", 3, "repeats line 2"),
    ("2026-01-01,*,news,*,media:news,by:pageviews\n", 2, "metric must be one of"),
    ("2026-01-01,*,news,*,media:news,abc\n", 2, "not a number or by:<metric>"),
    ("2026-01-01,*,games,*,media:games,by:impressions\n2026-01-01,*,games,*,bu:video,50\n", 2, "mix"),
    ("2026-01-01,*,games,*,media:games,by:impressions\n", 2, "two or more targets"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,,news,*,media:sports,100\n", 3, "name or *"),
])
def test_bad_rules_are_rejected_with_their_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(HEADER + body)
    with pytest.raises(RulesError) as info:
        load_rules(path, TARGETS)
    assert any(p.startswith(f"line {line}:") and message in p for p in info.value.problems), info.value.problems


def test_a_more_specific_rule_wins_over_a_wildcard(tmp_path: Path) -> None:
    path = tmp_path / "rules.csv"
    path.write_text(HEADER + "2026-01-01,*,news,*,media:news,100\n"
                    "2026-01-01,adpulse,news,news_unit00001,partner:acme,100\n")
    book = load_rules(path, TARGETS)
    assert book.split_for(dt.date(2026, 2, 1), "adpulse", "news", "news_unit00001") == {"partner:acme": Decimal(100)}
    assert book.split_for(dt.date(2026, 2, 1), "xchange", "news", "news_unit00001") == {"media:news": Decimal(100)}
    with pytest.raises(LookupError):
        book.split_for(dt.date(2025, 12, 31), "adpulse", "news", "x")


def test_a_frozen_day_is_split_exactly_in_yen() -> None:
    from ssp_revenue.allocate.rules import allocate_day

    book = load_rules(CONFIG / "allocation_rules.csv", TARGETS)
    rows = [
        {"media": "tech", "ad_unit": "tech_unit00000", "revenue": Decimal("10.000001")},
        {"media": "news", "ad_unit": "news_unit00000", "revenue": Decimal("3.333333")},
        {"media": "games", "ad_unit": "games_unit00000", "revenue": Decimal("0.5")},
    ]
    rate = Decimal("151.2345")
    out = allocate_day(rows, ssp="xchange", day=dt.date(2026, 11, 5), book=book, rate=rate)
    total = (sum(Decimal(str(r["revenue"])) for r in rows) * rate).quantize(Decimal(1))
    assert sum(out.values()) == total
    assert set(out) == {"media:tech", "partner:acme", "media:news", "media:games", "bu:video"}
    assert abs(out["partner:acme"] - float(Decimal("10.000001") * rate * Decimal("0.4"))) <= 1


def test_a_split_by_impressions_follows_first_party_delivery() -> None:
    from ssp_revenue.allocate.delivery import CsvDelivery
    from ssp_revenue.allocate.rules import allocate_day

    book = load_rules(CONFIG / "allocation_rules.csv", TARGETS)
    delivery = CsvDelivery(CONFIG / "delivery_sample.csv")
    day = dt.date(2026, 11, 20)
    games = delivery.metric(day, "games", "games_unit00003", "media:games", "impressions")
    video = delivery.metric(day, "games", "games_unit00003", "bu:video", "impressions")
    assert games and video
    rows = [{"media": "games", "ad_unit": "games_unit00003", "revenue": Decimal("1000000")}]
    out = allocate_day(rows, ssp="nihon", day=day, book=book, rate=Decimal(1), delivery=delivery)
    assert sum(out.values()) == 1_000_000
    assert abs(out["bu:video"] - Decimal(1_000_000) * video / (games + video)) < 1
    # Before the by-metric rules took effect, the same ad unit was split 50/50.
    before = allocate_day(rows, ssp="nihon", day=dt.date(2026, 11, 14), book=book, rate=Decimal(1),
                          delivery=delivery)
    assert before == {"bu:video": 500_000, "media:games": 500_000}


def test_no_delivery_figures_is_a_missing_reference_not_a_guess(tmp_path: Path) -> None:
    from ssp_revenue.allocate.delivery import CsvDelivery, MissingDelivery
    from ssp_revenue.allocate.rules import allocate_day
    from ssp_revenue.core.errors import Reason

    book = load_rules(CONFIG / "allocation_rules.csv", TARGETS)
    empty = tmp_path / "delivery.csv"
    empty.write_text("date,media,ad_unit,target,impressions,clicks\n")
    rows = [{"media": "games", "ad_unit": "games_unit00003", "revenue": Decimal("10")}]
    with pytest.raises(MissingDelivery) as info:
        allocate_day(rows, ssp="nihon", day=dt.date(2026, 11, 20), book=book, rate=Decimal(1),
                     delivery=CsvDelivery(empty))
    assert info.value.reason is Reason.MISSING_REFERENCE and "games/games_unit00003" in str(info.value)


def test_an_unassigned_ad_unit_is_named_before_anything_is_split(tmp_path: Path) -> None:
    from ssp_revenue.allocate.rules import allocate_day

    path = tmp_path / "rules.csv"
    path.write_text(HEADER + "2026-01-01,*,news,*,media:news,100\n")
    rows = [{"media": "news", "ad_unit": "n1", "revenue": Decimal(5)},
            {"media": "sports", "ad_unit": "s1", "revenue": Decimal(5)}]
    with pytest.raises(LookupError, match=r"1 ad unit.*sports/s1"):
        allocate_day(rows, ssp="adpulse", day=dt.date(2026, 2, 1), book=load_rules(path, TARGETS),
                     rate=Decimal(1))


MEDIA = ("news", "sports", "tech", "games")
rule_sets = st.fixed_dictionaries({
    m: st.dictionaries(st.sampled_from(sorted(TARGETS)), st.integers(min_value=1, max_value=50),
                       min_size=1, max_size=4) for m in MEDIA})
frozen_rows = st.lists(
    st.tuples(st.sampled_from(MEDIA), st.integers(0, 3),
              st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False)),
    min_size=1, max_size=30)


def _rules_file(tmp: Path, weights: dict[str, dict[str, int]]) -> Path:
    lines = [HEADER.strip()]
    for media, split in weights.items():
        total = sum(split.values())
        shares = {t: Decimal(w * 100) / Decimal(total) for t, w in split.items()}
        shares = {t: v.quantize(Decimal("0.0001")) for t, v in shares.items()}
        first = sorted(shares)[0]
        shares[first] += Decimal(100) - sum(shares.values())
        lines += [f"2026-01-01,*,{media},*,{t},{v}" for t, v in sorted(shares.items())]
    path = tmp / f"rules-{abs(hash(str(weights)))}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@given(weights=rule_sets, rows=frozen_rows, rate=st.sampled_from([Decimal(1), Decimal("151.2345")]),
       seed=st.integers())
def test_any_valid_rules_split_any_frozen_day_exactly(
    tmp_path_factory: pytest.TempPathFactory, weights: dict[str, dict[str, int]],
    rows: list[tuple[str, int, Decimal]], rate: Decimal, seed: int,
) -> None:
    """For any rule set and frozen rows: parts add up to the day's yen, none negative, order-free."""
    from ssp_revenue.allocate.rules import allocate_day

    book = load_rules(_rules_file(tmp_path_factory.mktemp("rules"), weights), TARGETS)
    frozen = [{"media": m, "ad_unit": f"{m}_{u}", "revenue": r} for m, u, r in rows]
    out = allocate_day(frozen, ssp="adpulse", day=dt.date(2026, 3, 1), book=book, rate=rate)
    exact = sum((r for _, _, r in rows), Decimal(0)) * rate
    assert sum(out.values()) == int(exact.quantize(Decimal(1)))
    assert all(v >= 0 for v in out.values())
    shuffled = list(frozen)
    random.Random(seed).shuffle(shuffled)
    assert allocate_day(shuffled, ssp="adpulse", day=dt.date(2026, 3, 1), book=book, rate=rate) == out
