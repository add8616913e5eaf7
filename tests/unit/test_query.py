"""Query translation and the Athena call flow (PyAthena replaced by a recording fake)."""

from typing import Any

from ssp_revenue.core.settings import Settings
from ssp_revenue.operate.query import AthenaEngine, engine_for, referenced_tables, to_duckdb


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


def test_every_catalog_column_has_a_duckdb_type() -> None:
    import pyarrow as pa
    import pytest

    from ssp_revenue.lake import catalog
    from ssp_revenue.operate.query import duckdb_type

    for table in catalog.TABLES.values():
        for field in table:
            assert duckdb_type(field.type)
    assert duckdb_type(pa.decimal128(18, 6)) == "DECIMAL(18, 6)"
    assert duckdb_type(pa.timestamp("us", tz="UTC")) == "TIMESTAMPTZ"
    with pytest.raises(TypeError):
        duckdb_type(pa.list_(pa.int64()))


def test_views_are_parsed_only_when_read_and_named_after_their_file(tmp_path: Any) -> None:
    import pytest

    from ssp_revenue.operate.query import ViewFiles

    (tmp_path / "good.sql").write_text("CREATE OR REPLACE VIEW ssp_revenue.good AS SELECT 1 AS x")
    (tmp_path / "wrong.sql").write_text("CREATE OR REPLACE VIEW ssp_revenue.other AS SELECT 1 AS x")
    (tmp_path / "broken.sql").write_text("SELECT 1")
    views = ViewFiles(tmp_path)
    assert sorted(views) == ["broken", "good", "wrong"]  # listing parses nothing
    assert "SELECT 1 AS x" in views["good"]
    with pytest.raises(ValueError, match="must be named after it"):
        views["wrong"]
    with pytest.raises(ValueError, match="expected CREATE VIEW"):
        views["broken"]


def test_object_cache_keeps_one_copy_per_etag(tmp_path: Any) -> None:
    from ssp_revenue.operate.query import ObjectCache, StoredObject

    class FakeS3:
        def __init__(self) -> None:
            self.gets: list[tuple[str, str]] = []

        def get_object(self, Bucket: str, Key: str, IfMatch: str) -> dict[str, Any]:
            self.gets.append((Key, IfMatch))

            class Body:
                @staticmethod
                def read() -> bytes:
                    return f"{Key}#{IfMatch}".encode()
            return {"Body": Body()}

    s3 = FakeS3()
    cache = ObjectCache(tmp_path)
    first = StoredObject("b", "tables/t/a.parquet", "e1", 5)
    rewritten = StoredObject("b", "tables/t/a.parquet", "e2", 5)
    paths = cache.fetch_all(s3, [first, first])
    assert cache.fetch_all(s3, [first]) == paths[:1]
    assert s3.gets == [("tables/t/a.parquet", "e1")]  # once, though named twice and asked again
    assert open(paths[0], "rb").read() == b"tables/t/a.parquet#e1"
    [other] = cache.fetch_all(s3, [rewritten])
    assert other != paths[0] and open(other, "rb").read() == b"tables/t/a.parquet#e2"
