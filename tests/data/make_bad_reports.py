"""Writes the bad-input corpus under tests/data/bad_reports (run by hand; files are committed).

Each file is a report body as an SSP might serve it; its name says what is wrong,
and its first part says the style that fetched it (async_job: gzip CSV in micros,
jp_csv: Shift_JIS export, rest_json: landed JSON pages).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "bad_reports"
HEADER = "date,site,ad_unit_code,country_code,device_category,impressions,clicks,revenue_micros,currency"
GOOD = [
    "2026-11-05,news,news_unit00000,JP,desktop,36161,704,14917704841,JPY",
    "2026-11-05,news,news_unit00000,JP,mobile,49663,164,22277496741,JPY",
    "2026-11-05,sports,sports_unit00000,US,tablet,1200,10,500000000,JPY",
]


def csv_gz(name: str, header: str = HEADER, rows: list[str] | None = None, raw: bytes | None = None) -> None:
    body = raw if raw is not None else (header + "\n" + "\n".join(GOOD if rows is None else rows) + "\n").encode()
    (OUT / f"async_job__{name}.csv.gz").write_bytes(gzip.compress(body, mtime=0))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    good_gz = gzip.compress((HEADER + "\n" + "\n".join(GOOD) + "\n").encode(), mtime=0)
    (OUT / "async_job__truncated_gzip.csv.gz").write_bytes(good_gz[: len(good_gz) // 2])
    (OUT / "async_job__not_gzip_at_all.csv.gz").write_bytes((HEADER + "\n" + GOOD[0]).encode())
    csv_gz("html_error_page_with_200", raw=b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>")
    csv_gz("json_where_csv_was_asked", raw=json.dumps({"rows": [{"date": "2026-11-05"}]}).encode())
    csv_gz("missing_column", header=HEADER.replace(",clicks", ""),
           rows=[",".join(r.split(",")[:6] + r.split(",")[7:]) for r in GOOD])
    csv_gz("extra_column", header=HEADER + ",viewability", rows=[r + ",0.5" for r in GOOD])
    csv_gz("renamed_column", header=HEADER.replace("revenue_micros", "earnings_micros"))
    csv_gz("negative_revenue", rows=[GOOD[0], GOOD[1].replace("22277496741", "-22277496741"), GOOD[2]])
    csv_gz("nan_revenue", rows=[GOOD[0], GOOD[1].replace("22277496741", "NaN"), GOOD[2]])
    csv_gz("infinity_revenue", rows=[GOOD[0], GOOD[1], GOOD[2].replace("500000000", "Infinity")])
    csv_gz("scientific_notation", rows=[GOOD[0], GOOD[1].replace("22277496741", "2.2277496741e10"), GOOD[2]])
    csv_gz("thousands_separators", rows=[GOOD[0], GOOD[1].replace("22277496741", '"22,277,496,741"'), GOOD[2]])
    csv_gz("overflow_beyond_decimal", rows=[GOOD[0], GOOD[1].replace("22277496741", "99999999999999999999999"), GOOD[2]])
    csv_gz("duplicated_keys", rows=[GOOD[0], GOOD[1], GOOD[1]])
    csv_gz("rows_for_another_date", rows=[GOOD[0], GOOD[1].replace("2026-11-05", "2026-11-04"), GOOD[2]])
    csv_gz("empty_report", rows=[])
    csv_gz("header_only_no_newline", raw=HEADER.encode())
    csv_gz("wrong_currency", rows=[GOOD[0], GOOD[1].replace(",JPY", ",USD"), GOOD[2]])
    csv_gz("not_a_currency_code", rows=[GOOD[0], GOOD[1], GOOD[2].replace(",JPY", ",yen")])
    csv_gz("empty_cell", rows=[GOOD[0], GOOD[1].replace(",164,", ",,"), GOOD[2]])
    csv_gz("short_row", rows=[GOOD[0], ",".join(GOOD[1].split(",")[:5]), GOOD[2]])
    csv_gz("clicks_exceed_impressions", rows=[GOOD[0], GOOD[1], GOOD[2].replace(",1200,10,", ",1200,5000,")])
    csv_gz("bad_date", rows=[GOOD[0], GOOD[1].replace("2026-11-05", "2026-02-30"), GOOD[2]])
    csv_gz("utf16_body", raw=(HEADER + "\n" + "\n".join(GOOD)).encode("utf-16"))
    csv_gz("lowercase_country", rows=[GOOD[0], GOOD[1].replace(",JP,", ",jp,"), GOOD[2]])
    csv_gz("totals_do_not_add_up")  # served with stated totals that differ (see the test)
    jp_header = "日付,サイト,広告枠,国,デバイス,表示回数,クリック数,売上(税込)\r\n"
    jp_rows = '2026/11/05,ニュース,news_unit00000,JP,mobile,"38,682",598,"27,594"\r\n'
    (OUT / "jp_csv__utf8_with_bom.csv").write_bytes(
        "\ufeff".encode() + (jp_header + jp_rows + '合計,,,,,"38,682",598,"27,594"\r\n').encode("utf-8"))
    (OUT / "jp_csv__totals_mismatch.csv").write_bytes(
        (jp_header + jp_rows + '合計,,,,,"38,682",598,"27,595"\r\n').encode("cp932"))
    (OUT / "jp_csv__cut_before_totals_row.csv").write_bytes((jp_header + jp_rows).encode("cp932"))
    (OUT / "rest_json__truncated_page.json.gz").write_bytes(gzip.compress(
        b'{"business_tz": "Asia/Tokyo", "end": "2026-11-05T15:00:00Z", "pages": [{"unparseable": "{\\"data\\": [{\\"hour\\""}], '
        b'"start": "2026-11-04T15:00:00Z"}', mtime=0))
    (OUT / "rest_json__money_with_too_many_decimals.json.gz").write_bytes(gzip.compress(json.dumps({
        "business_tz": "Asia/Tokyo", "start": "2026-11-04T15:00:00Z", "end": "2026-11-05T15:00:00Z",
        "pages": [{"data": [{"hour": "2026-11-04T15:00:00Z", "publisher_site": "news", "placement": "p1",
                             "geo": "JP", "platform": "mobile", "impressions": 10, "clicks": 1,
                             "revenue_usd": "1.1234567", "currency": "USD"}],
                   "next_cursor": None,
                   "totals": {"rows": 1, "impressions": 10, "clicks": 1, "revenue_usd": "1.1234567"}}],
    }).encode(), mtime=0))


if __name__ == "__main__":
    main()
