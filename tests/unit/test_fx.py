import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from ssp_revenue.allocate.fx import CsvRates, MissingRate

CONFIG = Path(__file__).resolve().parents[2] / "include" / "config"


def test_sample_rates_cover_the_year_and_jpy_is_one() -> None:
    rates = CsvRates(CONFIG / "fx_rates.csv")
    assert rates.rate("JPY", dt.date(2026, 11, 5)) == 1
    assert Decimal(140) < rates.rate("USD", dt.date(2026, 11, 5)) < Decimal(170)
    assert rates.rate("EUR", dt.date(2026, 12, 31)) > 0


def test_a_missing_rate_is_an_error_not_a_guess(tmp_path: Path) -> None:
    path = tmp_path / "fx.csv"
    path.write_text("date,currency,jpy_per_unit,source\n2026-11-05,USD,151.2,test\n")
    rates = CsvRates(path)
    with pytest.raises(MissingRate, match="no USD/JPY rate for 2026-11-06"):
        rates.rate("USD", dt.date(2026, 11, 6))


@pytest.mark.parametrize("row", ["2026-11-05,USD,-1,x", "2026-11-05,USD,abc,x", "yesterday,USD,150,x"])
def test_bad_rate_rows_name_their_line(tmp_path: Path, row: str) -> None:
    path = tmp_path / "fx.csv"
    path.write_text("date,currency,jpy_per_unit,source\n" + row + "\n")
    with pytest.raises(ValueError, match="line 2"):
        CsvRates(path)
