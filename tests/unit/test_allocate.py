"""Allocation rules validation and the largest-remainder split."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssp_revenue.allocate import RulesError, largest_remainder, load_rules, load_targets

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


@pytest.mark.parametrize("body,line,message", [
    ("2026-01-01,*,news,*,media:news,90\n", 2, "add up to 90%"),
    ("2026-01-01,*,news,*,media:nope,100\n", 2, "unknown target"),
    ("2026-13-01,*,news,*,media:news,100\n", 2, "not YYYY-MM-DD"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,*,news,*,media:news,0\n", 3, "must be > 0"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,adpulse,news,x,media:news\n", 3, "cells"),
    ("2026-01-01,*,news,*,media:news,100\n2026-01-01,adpulse,*,*,media:sports,100\n", 3, "overlaps"),
    ("2026-01-01,*,news,*,media:news,50\n2026-01-01,*,news,*,media:news,50\n", 3, "repeats line 2"),
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


def test_a_frozen_day_is_split_exactly_in_yen_with_its_rate_and_versions() -> None:
    from ssp_revenue.allocate import allocate_day

    book = load_rules(CONFIG / "allocation_rules.csv", TARGETS)
    rows = [
        {"media": "tech", "ad_unit": "tech_unit00000", "revenue": Decimal("10.000001"), "currency": "USD"},
        {"media": "news", "ad_unit": "news_unit00000", "revenue": Decimal("3.333333"), "currency": "USD"},
        {"media": "games", "ad_unit": "games_unit00000", "revenue": Decimal("0.5"), "currency": "USD"},
    ]
    rate = Decimal("151.2345")
    out = allocate_day(rows, ssp="xchange", day=dt.date(2026, 11, 5), book=book, rate=rate,
                       source_version="abc")
    total = (sum(Decimal(str(r["revenue"])) for r in rows) * rate).quantize(Decimal(1))
    assert sum(r["revenue_jpy"] for r in out) == total
    by_target = {r["target"]: r["revenue_jpy"] for r in out}
    assert set(by_target) == {"media:tech", "partner:acme", "media:news", "media:games", "bu:video"}
    assert abs(by_target["partner:acme"] - float(Decimal("10.000001") * rate * Decimal("0.4"))) <= 1
    assert {r["rules_version"] for r in out} == {book.version}
    assert {r["fx_rate"] for r in out} == {rate}
