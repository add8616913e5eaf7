"""``ssp-revenue query``: one Athena-dialect SQL, two engines.

Locally the SQL is translated with sqlglot and runs on DuckDB over exactly the
partition locations the Glue catalog points to (so it sees what Athena would);
in production it runs on Athena through PyAthena.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any, Protocol

import boto3
import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import sqlglot
from pyarrow import fs
from sqlglot import exp

from ssp_revenue import as_of as as_of_mod
from ssp_revenue import catalog as catalog_mod
from ssp_revenue import lake, schema
from ssp_revenue.catalog import GlueCatalog
from ssp_revenue.settings import Settings


@dataclasses.dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def format(self) -> str:
        """A plain text table for the terminal."""
        cells = [[_text(v) for v in row] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))
        out = [line, "  ".join("-" * w for w in widths)]
        for row in cells:
            out.append("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        out.append(f"({len(self.rows)} row{'s' if len(self.rows) != 1 else ''})")
        return "\n".join(out)


def _text(value: Any) -> str:
    return "NULL" if value is None else str(value)


class QueryEngine(Protocol):
    def query(self, sql: str, as_of: dt.datetime | None = None) -> QueryResult: ...


VIEWS_DIR = Path(__file__).resolve().parent.parent / "sql" / "views"


def load_views(directory: Path = VIEWS_DIR) -> dict[str, str]:
    """The analysts' views (include/sql/views): name -> the SELECT they stand for."""
    views: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        tree = sqlglot.parse_one(path.read_text(), read="athena")
        if not isinstance(tree, exp.Create) or str(tree.args.get("kind", "")).upper() != "VIEW":
            raise ValueError(f"{path}: expected CREATE VIEW")
        name = tree.this.name if isinstance(tree.this, exp.Table) else tree.this.this.name
        views[name] = tree.expression.sql(dialect="athena")
    return views


def referenced_tables(sql: str, views: dict[str, str] | None = None) -> list[str]:
    """Tables a query reads, views expanded to the tables they read."""
    tree = sqlglot.parse_one(sql, read="athena")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names = {t.name for t in tree.find_all(exp.Table) if t.name not in ctes}
    for name in list(names):
        if views and name in views:
            names.update(referenced_tables(views[name], views))
    return sorted(names)


def to_duckdb(sql: str, database: str) -> str:
    """Athena SQL -> DuckDB SQL, with ``database.table`` reduced to the registered view."""
    tree = sqlglot.parse_one(sql, read="athena")
    for table in tree.find_all(exp.Table):
        if table.args.get("db") and table.args["db"].name in (database, "ssp_revenue"):
            table.set("db", None)
            table.set("catalog", None)
    return tree.sql(dialect="duckdb")


class LocalEngine:
    """DuckDB over the Glue catalog's current partition locations on S3."""

    def __init__(self, settings: Settings, glue: Any, s3: Any) -> None:
        self.settings = settings
        self.catalog = GlueCatalog(glue, settings.glue_database, settings.bucket)
        self.s3 = s3
        endpoint = settings.aws_endpoint or ""
        scheme = "http" if endpoint.startswith("http://") else "https"
        found = boto3.session.Session(region_name=settings.region).get_credentials()
        if found is None:
            raise RuntimeError("no AWS credentials for the local query engine")
        credentials = found.get_frozen_credentials()
        self.filesystem = fs.S3FileSystem(
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            session_token=credentials.token,
            region=settings.region,
            endpoint_override=endpoint.split("://", 1)[-1] or None,
            scheme=scheme,
        )

    def dataset(self, table: str) -> ds.Dataset:
        """The table as Athena sees it: only the files under live partition locations."""
        if table == as_of_mod.HISTORY:  # every version prefix, as Athena's projection lists them
            keys = [f"{self.settings.bucket}/{k}" for k in lake.list_keys(self.s3, self.settings.bucket,
                                                                        "tables/revenue/")
                    if k.endswith(".parquet") and "/version=" in k]
            return ds.dataset(sorted(keys), schema=schema.REVENUE.remove_metadata(), format="parquet",
                              filesystem=self.filesystem)
        table_schema = catalog_mod.TABLES[table]

        def files_of(location: str) -> list[str]:
            bucket, prefix = lake.split_uri(location)
            return [f"{bucket}/{k}" for k in lake.list_keys(self.s3, bucket, prefix)
                    if k.endswith(".parquet")]

        # One listing per partition: listed side by side, they cost one round trip, not hundreds.
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            found = pool.map(files_of, [p.location for p in self.catalog.partitions(table)])
            files = [f for group in found for f in group]
        return ds.dataset(sorted(files), schema=table_schema.remove_metadata(),
                          format="parquet", filesystem=self.filesystem)

    def _execute(self, connection: duckdb.DuckDBPyConnection, sql: str,
                 at: dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
        views = load_views()
        names = referenced_tables(sql, views)
        connection.execute("SET TimeZone = 'UTC'")  # the lake's timestamps, and as-of literals, are UTC
        if at is not None:
            return self._execute_as_of(connection, sql, at, views, names)
        for name in names:
            if name in catalog_mod.TABLES or name == as_of_mod.HISTORY:
                connection.register(name, self.dataset(name))
        for name in names:
            if name in views:
                body = to_duckdb(views[name], self.settings.glue_database)
                connection.execute(f'CREATE VIEW "{name}" AS {body}')
        return connection.execute(to_duckdb(sql, self.settings.glue_database))

    def _execute_as_of(self, connection: duckdb.DuckDBPyConnection, sql: str, at: dt.datetime,
                       views: dict[str, str], names: list[str]) -> duckdb.DuckDBPyConnection:
        tables = [n for n in names if n in catalog_mod.TABLES or n == as_of_mod.HISTORY]
        for name in as_of_mod.stored_tables(tables):
            connection.register(f"stored_{name}", self.dataset(name))
        if "revenue" in tables:
            self._refuse_vacuumed(connection, at)
        rewritten = as_of_mod.rewrite(sql, at, tables=tables, views=views, source=lambda n: f"stored_{n}")
        return connection.execute(to_duckdb(rewritten, self.settings.glue_database))

    def _refuse_vacuumed(self, connection: duckdb.DuckDBPyConnection, at: dt.datetime) -> None:
        """Every version live at ``at`` must still be stored, or the answer would be silently short."""
        wanted = connection.execute(to_duckdb(as_of_mod.live_versions_at(at, lambda n: f"stored_{n}"),
                                              self.settings.glue_database)).fetchall()
        stored = {(d, s, v) for d, s, v in connection.execute(
            "SELECT DISTINCT revenue_date, ssp, source_version FROM stored_revenue_history").fetchall()}
        missing = [f"{s} {d.isoformat()} version {v}" for d, s, v in wanted if (d, s, v) not in stored]
        if missing:
            raise LookupError(
                f"as of {at.isoformat()}, {len(missing)} live versions have been vacuumed "
                f"(kept {self.settings.reader_grace_days} days after they were superseded): "
                + "; ".join(missing[:5]))

    def query(self, sql: str, as_of: dt.datetime | None = None) -> QueryResult:
        with duckdb.connect() as connection:
            result = self._execute(connection, sql, as_of)
            columns = [d[0] for d in result.description or []]
            return QueryResult(columns, [tuple(r) for r in result.fetchall()])

    def arrow(self, sql: str, as_of: dt.datetime | None = None) -> pa.Table:
        with duckdb.connect() as connection:
            return self._execute(connection, sql, as_of).to_arrow_table()


class AthenaEngine:
    """The same SQL on Athena, through PyAthena (workgroup and result location from settings)."""

    def __init__(self, settings: Settings, connect: Any | None = None) -> None:
        self.settings = settings
        if connect is None:
            from pyathena import connect as pyathena_connect

            connect = pyathena_connect
        self._connect = connect

    def query(self, sql: str, as_of: dt.datetime | None = None) -> QueryResult:
        if as_of is not None:
            views = load_views()
            names = referenced_tables(sql, views)
            tables = [n for n in names if n in catalog_mod.TABLES or n == as_of_mod.HISTORY]
            database = self.settings.glue_database
            sql = as_of_mod.rewrite(sql, as_of, tables=tables, views=views,
                                    source=lambda n: f"{database}.{n}")
        connection = self._connect(
            s3_staging_dir=self.settings.athena_output,
            work_group=self.settings.athena_workgroup,
            region_name=self.settings.region,
            schema_name=self.settings.glue_database,
        )
        try:
            cursor = connection.cursor()
            cursor.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, [tuple(r) for r in cursor.fetchall()])
        finally:
            connection.close()


def engine_for(settings: Settings, glue: Any = None, s3: Any = None) -> QueryEngine:
    if settings.uses_athena:
        return AthenaEngine(settings)
    return LocalEngine(settings, glue, s3)
