"""Query translation and the Athena call flow (PyAthena replaced by a recording fake)."""

from typing import Any

from ssp_revenue.query import AthenaEngine, engine_for, referenced_tables, to_duckdb
from ssp_revenue.settings import Settings


def test_tables_are_found_and_ctes_ignored() -> None:
    sql = "WITH x AS (SELECT * FROM ssp_revenue.revenue) SELECT * FROM x JOIN publish_log p ON true"
    assert referenced_tables(sql) == ["publish_log", "revenue"]


def test_athena_sql_is_translated_for_duckdb() -> None:
    sql = ("SELECT date_format(fetched_at, '%Y-%m') AS m, sum(revenue) FROM ssp_revenue.revenue "
           "WHERE revenue_date BETWEEN DATE '2026-11-01' AND DATE '2026-11-30' GROUP BY 1")
    out = to_duckdb(sql, "ssp_revenue")
    assert "ssp_revenue.revenue" not in out
    assert "STRFTIME" in out.upper()


class FakeCursor:
    description = [("revenue_date",), ("revenue",)]

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def execute(self, sql: str) -> None:
        self.log.append(("execute", sql))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [("2026-11-05", "1.5")]


class FakeConnection:
    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.log)

    def close(self) -> None:
        self.log.append(("close",))


def test_athena_engine_passes_workgroup_output_and_database() -> None:
    log: list[Any] = []

    def connect(**kwargs: Any) -> FakeConnection:
        log.append(("connect", kwargs))
        return FakeConnection(log)

    settings = Settings(athena_workgroup="analytics", athena_output="s3://results/athena/",
                        region="ap-northeast-1")
    result = AthenaEngine(settings, connect=connect).query("SELECT 1")
    assert log[0] == ("connect", {"s3_staging_dir": "s3://results/athena/", "work_group": "analytics",
                                  "region_name": "ap-northeast-1", "schema_name": "ssp_revenue"})
    assert log[1] == ("execute", "SELECT 1") and log[-1] == ("close",)
    assert result.columns == ["revenue_date", "revenue"] and result.rows == [("2026-11-05", "1.5")]


def test_engine_choice_follows_settings() -> None:
    assert isinstance(engine_for(Settings(athena_workgroup="w", athena_output="s3://o/")), AthenaEngine)
