"""Statements: exact reading, the refusals that name their line, the true-up split, ordering."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import itertools
import json
from pathlib import Path

import pytest

from ssp_revenue.allocate import trueup
from ssp_revenue.core import registry
from ssp_revenue.core.calendar import Month
from ssp_revenue.core.errors import PipelineError, Reason, StatementRejected
from ssp_revenue.ingest import statements
from ssp_revenue.lake.statements import Accepted, in_force
from ssp_revenue.operate.statements import months_to_check

CONFIG = registry.SspConfig(
    name="adpulse", style="async_job", connection_id="ssp_adpulse", timezone="Asia/Tokyo", currency="USD",
    statement=registry.StatementTerms(source="upload", account="pub-adpulse-001"))
OCTOBER = Month(2026, 10)
TODAY = dt.date(2026, 11, 6)


def body(**changes: object) -> dict[str, object]:
    found: dict[str, object] = {
        "statement_id": "adpulse-2026-10-1", "account": "pub-adpulse-001", "month": "2026-10",
        "currency": "USD", "issued_at": "2026-11-02T00:00:00+09:00", "replaces": None,
        "payment_fx_rate": None, "total": "1000.10",
        "lines": [{"kind": "revenue", "amount": "1020.30"},
                  {"kind": "invalid_traffic", "amount": "-20.20", "description": "IVT 1.98%"}]}
    found.update(changes)
    return found


def read(data: dict[str, object] | bytes) -> statements.Statement:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    found = statements.parse(CONFIG, OCTOBER, raw, sha256="f" * 64, raw_key="statements/raw/x.json")
    statements.validate(found, CONFIG, expected_month=OCTOBER, today=TODAY)
    return found


def test_json_amounts_are_exact_decimals_even_as_numbers() -> None:
    raw = json.dumps(body()).replace('"1020.30"', "1020.30").replace('"-20.20"', "-20.20").encode()
    found = read(raw)
    assert found.total == decimal.Decimal("1000.10")
    assert [line.amount for line in found.lines] == [decimal.Decimal("1020.30"), decimal.Decimal("-20.20")]
    assert found.itemised() == {"invalid_traffic": decimal.Decimal("-20.20")}


def test_csv_reads_the_same_statement() -> None:
    head = "statement_id,account,month,currency,issued_at,replaces,payment_fx_rate,kind,for_month,description,amount"
    common = "adpulse-2026-10-1,pub-adpulse-001,2026-10,USD,2026-11-02T00:00:00+09:00,,"
    text = "\n".join([head, f"{common},revenue,2026-10,Revenue,1020.30",
                      f"{common},late_deduction,2026-09,Late IVT,-20.20", f"{common},total,2026-10,,1000.10"])
    found = read(text.encode())
    assert found.total == decimal.Decimal("1000.10")
    assert found.itemised() == {"late_deduction for 2026-09": decimal.Decimal("-20.20")}
    assert [line.line for line in found.lines] == [2, 3]


@pytest.mark.parametrize(("changes", "says"), [
    ({"account": "pub-other-999"}, "is not ours at adpulse"),
    ({"month": "2026-11"}, "has not ended yet"),
    ({"total": "1000.11"}, "add up to 1000.10, not to its total 1000.11"),
    ({"currency": "EUR"}, "neither USD nor JPY"),
    ({"currency": "JPY"}, "must state its payment_fx_rate"),
    ({"lines": [{"kind": "revenue", "amount": "1000.10", "for_month": "2026-12"}]}, "for a month after"),
    ({"lines": [{"kind": "Revenue!", "amount": "1000.10"}]}, "lowercase word"),
    ({"lines": [{"kind": "revenue", "amount": "ten"}]}, "is not a number"),
    ({"lines": [{"kind": "revenue", "amount": "1.0000001"}]}, "more than 6 decimals"),
    ({"issued_at": "yesterday"}, "not an ISO instant"),
])
def test_a_statement_that_cannot_be_used_is_refused_naming_ssp_file_and_line(
        changes: dict[str, object], says: str) -> None:
    with pytest.raises(StatementRejected) as refused:
        read(body(**changes))
    text = str(refused.value)
    assert says in text and "ssp=adpulse" in text and "file=statements/raw/x.json" in text
    assert refused.value.reason is Reason.STATEMENT_REJECTED


def test_a_refused_csv_line_is_named_by_its_line_number() -> None:
    head = "statement_id,account,month,currency,issued_at,replaces,payment_fx_rate,kind,for_month,description,amount"
    common = "s1,pub-adpulse-001,2026-10,USD,2026-11-02T00:00:00Z,,"
    text = "\n".join([head, f"{common},revenue,2026-10,Revenue,10", f"{common},fee,2026-10,Fee,1O",
                      f"{common},total,2026-10,,9"])
    with pytest.raises(StatementRejected) as refused:
        read(text.encode())
    assert refused.value.row == 3 and "'1O' is not a number" in str(refused.value)


@pytest.mark.parametrize(("paid", "frozen", "expected"), [
    (301, {"a": 100, "b": 100, "c": 100}, {"a": 1, "b": 0, "c": 0}),  # one yen over three targets
    (299, {"a": 100, "b": 100, "c": 100}, {"a": -1, "b": 0, "c": 0}),  # a negative true-up
    (302, {"a": 100, "b": 100, "c": 100}, {"a": 1, "b": 1, "c": 0}),
    (90, {"a": 70, "b": 30}, {"a": -7, "b": -3}),
    (1_000_003, {"a": 333_333, "b": 333_333, "c": 333_334}, {"a": 1, "b": 1, "c": 1}),
    (5, {"a": 0, "b": 10}, {"a": 0, "b": -5}),
])
def test_the_trueup_adds_up_to_the_statement_to_the_yen(paid: int, frozen: dict[str, int],
                                                        expected: dict[str, int]) -> None:
    parts = trueup.split(paid, frozen)
    assert parts == expected
    assert sum(frozen.values()) + sum(parts.values()) == paid


def test_a_trueup_with_nothing_allocated_is_refused() -> None:
    with pytest.raises(PipelineError, match="nothing was allocated"):
        trueup.split(10, {"a": 0})


def _accepted(statement_id: str, issued: str, replaces: str | None = None) -> Accepted:
    found = statements.parse(CONFIG, OCTOBER, json.dumps(body(
        statement_id=statement_id, issued_at=issued, replaces=replaces)).encode(),
        sha256=statement_id.ljust(64, "0"), raw_key=f"statements/raw/{statement_id}.json")
    return Accepted(found, dt.datetime(2026, 11, 20, tzinfo=dt.UTC))


def test_the_statement_in_force_does_not_depend_on_arrival_order() -> None:
    first = _accepted("s1", "2026-11-02T00:00:00Z")
    # A correction issued *earlier* than a reprint still wins: it names what it replaces.
    correction = _accepted("s2", "2026-11-12T00:00:00Z", replaces="s1")
    reprint = _accepted("s1b", "2026-11-01T00:00:00Z")
    for order in itertools.permutations([first, correction, reprint]):
        chosen = in_force(list(order))
        assert chosen is not None and chosen.statement.statement_id == "s2"
    assert in_force([]) is None


def test_months_to_check_are_the_last_ended_months_since_the_start() -> None:
    assert months_to_check(dt.date(2026, 11, 6), None, 3) == [Month(2026, 8), Month(2026, 9), OCTOBER]
    assert months_to_check(dt.date(2026, 11, 6), dt.date(2026, 10, 30), 3) == [OCTOBER]
    assert months_to_check(dt.date(2026, 1, 2), dt.date(2025, 12, 31), 2) == [Month(2025, 12)]
    # An account retired on Oct 29: nothing after its month.
    assert months_to_check(dt.date(2026, 12, 6), None, 3, dt.date(2026, 10, 29)) == [Month(2026, 9), OCTOBER]


def test_statement_terms_are_checked_where_they_are_declared(tmp_path: Path) -> None:
    good = dataclasses.asdict(CONFIG.statement)  # type: ignore[arg-type]
    good["tolerance_pct"] = "2.5"
    entry = {"name": "adpulse", "style": "async_job", "connection_id": "c", "timezone": "Asia/Tokyo",
             "currency": "JPY", "statement": good}
    path = tmp_path / "ssps.yaml"
    path.write_text(json.dumps({"ssps": [entry]}))
    terms = registry.load_registry(path)[0].statement
    assert terms is not None and terms.tolerance_pct == decimal.Decimal("2.5")
    for bad, says in (({"source": "fax"}, "statement.source"), ({"account": ""}, "account is required"),
                      ({"expected_day": 31}, "expected_day"), ({"color": "red"}, "unknown keys")):
        path.write_text(json.dumps({"ssps": [{**entry, "statement": {**good, **bad}}]}))
        with pytest.raises(registry.RegistryError, match=says):
            registry.load_registry(path)
