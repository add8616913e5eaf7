"""Report styles described in YAML: refused with their line, read exactly, served from the same file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from ssp_emulator.app import create_app
from ssp_emulator.declarative import register_described
from ssp_emulator.figures import SspProfile, totals
from ssp_emulator.state import EmulatorState
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.styles import StyleError, load_style, parse_style
from ssp_revenue.ingest.connectors.declarative import connector_for

DAY = dt.date(2026, 11, 5)
EU = """\
description: a European SSP's semicolon CSV
auth:
  headers:
    X-User: login
    X-Key: password
request:
  path: "{ssp}/export/{date}.csv"
body:
  format: csv
  encoding: utf-8
  delimiter: ";"
columns:
  - {name: Tag, to: revenue_date, format: "%d.%m.%Y"}
  - {name: Website, to: media}
  - {name: Platzierung, to: ad_unit}
  - {name: Land, to: country}
  - {name: Gerät, to: device}
  - {name: Impressionen, to: impressions, number_format: thousands_decimal_comma}
  - {name: Klicks, to: clicks}
  - {name: Umsatz, to: revenue, unit: decimal, number_format: thousands_decimal_comma}
  - {name: Währung, to: currency}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_jp_csv_description_reads_as_the_export_is() -> None:
    spec = load_style("jp_csv")
    assert spec is not None and spec.encoding == "cp932" and spec.totals_label == "合計"
    assert spec.expected_columns[-1] == "売上(税込)"
    revenue = spec.column("revenue")
    assert revenue is not None and revenue.tax is not None and revenue.tax.rate == Decimal("0.10")


@pytest.mark.parametrize(("change", "line", "message"), [
    (("    X-Key: password", "    X-Key: token"), 5, "login or password, not 'token'"),
    (('  path: "{ssp}/export/{date}.csv"', '  path: "{ssp}/export/{day}.csv"'), 7, "unknown placeholder {day}"),
    (("  delimiter: \";\"", "  delimiter: \";\"\n  quoting: all"), 12, "unknown key 'quoting'"),
    (("to: impressions, number_format: thousands_decimal_comma",
      "to: impressions, number_format: roman"), 18, "'roman' is not one of"),
    (("{name: Klicks, to: clicks}", "{name: Klicks, to: klicks}"), 19, "'klicks' is not a canonical column"),
    (("{name: Land, to: country}", "{name: Land, to: media}"), 16, "'media' is fed by columns 1 and 3"),
    (("  - {name: Gerät, to: device}\n", ""), 12, "no column feeds ['device']"),
    (("unit: decimal,", "unit: decimal, tax: {rate: 10, when: gross},"), 20, "a fraction"),
    (("  format: csv", "  format: xml"), 9, "csv or json"),
    (("  encoding: utf-8", "  encoding: klingon"), 10, "unknown encoding"),
    (("request:", "request: [\n"), 9, "not YAML"),
])
def test_a_bad_description_is_refused_with_its_file_and_line(
        tmp_path: Path, change: tuple[str, str], line: int, message: str) -> None:
    old, new = change
    assert old in EU
    path = write(tmp_path, "eu_semicolon", EU.replace(old, new))
    with pytest.raises(StyleError) as refused:
        parse_style(path)
    assert str(refused.value).startswith(f"{path}:{line}:"), str(refused.value)
    assert message in str(refused.value)


def served(spec_text: str, tmp_path: Path, *, currency: str = "EUR", unit_micros: int = 1,
           headers: dict[str, str] | None = None) -> tuple[bytes, int, EmulatorState, SspConfig]:
    spec = parse_style(write(tmp_path, "eu_semicolon", spec_text))
    state = EmulatorState(now=dt.datetime(2026, 11, 7, tzinfo=dt.UTC))
    app = create_app(state)
    state.profiles["kaisha"] = SspProfile(name="kaisha", style="eu_semicolon", timezone="Europe/Berlin",
                                          currency=currency, client_id="k-user", client_secret="k-key",
                                          money_unit_micros=unit_micros)
    register_described(app, state, "kaisha", spec)
    sent = {"X-User": "k-user", "X-Key": "k-key"} if headers is None else headers
    response = app.test_client().get(f"/kaisha/export/{DAY.isoformat()}.csv", headers=sent)
    config = SspConfig(name="kaisha", style="eu_semicolon", connection_id="ssp_kaisha",
                       timezone="Europe/Berlin", currency=currency, tz_policy="ssp_date")
    return response.data, response.status_code, state, config


def test_a_described_ssp_is_served_and_read_back_to_the_truth_exactly(tmp_path: Path) -> None:
    body, status, state, config = served(EU, tmp_path)
    assert status == 200
    text = body.decode()
    assert text.startswith("Tag;Website;Platzierung;Land;Gerät;Impressionen;Klicks;Umsatz;Währung\r\n")
    assert "05.11.2026;" in text and "," in text.splitlines()[1].split(";")[7]  # 1.234,567890
    spec = parse_style(tmp_path / "eu_semicolon.yaml")
    parsed = connector_for(spec).parse(config, body, {}, DAY)
    truth = totals(state.truth("kaisha", DAY, state.now))
    table = parsed.table
    assert table.num_rows == truth["rows"]
    assert sum(table["impressions"].to_pylist()) == truth["impressions"]
    assert sum(table["clicks"].to_pylist()) == truth["clicks"]
    assert sum(table["revenue"].to_pylist(), Decimal(0)) == Decimal(truth["revenue_micros"]).scaleb(-6)
    assert set(table["currency"].to_pylist()) == {"EUR"}


def test_whole_units_with_a_totals_row_are_checked_as_stated(tmp_path: Path) -> None:
    spec = EU.replace("unit: decimal, number_format: thousands_decimal_comma",
                      "unit: whole, number_format: thousands_decimal_comma").replace(
        "  delimiter: \";\"", "  delimiter: \";\"\n  totals_row: {label: Summe}")
    body, status, state, config = served(spec, tmp_path, unit_micros=1_000_000)
    assert status == 200 and body.decode().splitlines()[-1].startswith("Summe;")
    parsed = connector_for(parse_style(tmp_path / "eu_semicolon.yaml")).parse(config, body, {}, DAY)
    truth = totals(state.truth("kaisha", DAY, state.now))
    assert parsed.stated_totals == {"rows": truth["rows"], "impressions": truth["impressions"],
                                    "clicks": truth["clicks"]}
    assert sum(parsed.table["revenue"].to_pylist(), Decimal(0)) == Decimal(truth["revenue_micros"]).scaleb(-6)


def test_the_described_emulator_refuses_other_credentials(tmp_path: Path) -> None:
    _, status, _, _ = served(EU, tmp_path, headers={"X-User": "k-user", "X-Key": "stale"})
    assert status == 401


def test_libyaml_reads_the_shipped_files_as_the_python_parser_does() -> None:
    """The registry and the styles are read with libyaml: same values, same line marks."""
    import yaml

    from ssp_revenue.core import yaml_text
    from ssp_revenue.core.settings import Settings

    config = Settings().config_dir
    for path in [config / "ssps.yaml", *sorted((config / "styles").glob("*.yaml"))]:
        text = path.read_text()
        assert yaml_text.load(text) == yaml.safe_load(text), path
        fast, slow = yaml_text.compose(text), yaml.compose(text)
        assert fast is not None and slow is not None
        assert [n.start_mark.line for n in _nodes(fast)] == [n.start_mark.line for n in _nodes(slow)], path


def _nodes(node):  # type: ignore[no-untyped-def]
    yield node
    if isinstance(node.value, list):
        for item in node.value:
            for part in item if isinstance(item, tuple) else (item,):
                yield from _nodes(part)
