"""``ssp-revenue query``: one Athena-dialect SQL, two engines.

Locally the SQL is translated with sqlglot and runs on DuckDB over exactly the
partition locations the Glue catalog points to (so it sees what Athena would);
in production it runs on Athena through PyAthena.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import os
import posixpath
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from ssp_revenue.core import schema
from ssp_revenue.core.settings import Settings
from ssp_revenue.lake import as_of as as_of_mod
from ssp_revenue.lake import catalog as catalog_mod
from ssp_revenue.lake import store
from ssp_revenue.lake.catalog import GlueCatalog


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


VIEWS_DIR = Path(__file__).resolve().parents[2] / "sql" / "views"


class ViewFiles(Mapping[str, str]):
    """The analysts' views (include/sql/views): name -> the SELECT it stands for.

    Named by file, parsed when first read: a query pays only for the views it uses.
    """

    def __init__(self, directory: Path = VIEWS_DIR) -> None:
        self._paths = {path.stem: path for path in sorted(directory.glob("*.sql"))}
        self._parsed: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._parsed:
            path = self._paths[name]
            tree = sqlglot.parse_one(path.read_text(), read="athena")
            if not isinstance(tree, exp.Create) or str(tree.args.get("kind", "")).upper() != "VIEW":
                raise ValueError(f"{path}: expected CREATE VIEW")
            declared = tree.this.name if isinstance(tree.this, exp.Table) else tree.this.this.name
            if declared != name:
                raise ValueError(f"{path}: declares view {declared!r}; the file must be named after it")
            self._parsed[name] = tree.expression.sql(dialect="athena")
        return self._parsed[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def load_views(directory: Path = VIEWS_DIR) -> ViewFiles:
    return ViewFiles(directory)


def referenced_tables(sql: str, views: Mapping[str, str] | None = None) -> list[str]:
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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(arrow: pa.DataType) -> str:
    """The DuckDB type of a catalog column (the lake's types only)."""
    if pa.types.is_decimal(arrow):
        return f"DECIMAL({arrow.precision}, {arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ" if arrow.tz else "TIMESTAMP"
    simple = {pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.int64(): "BIGINT",
              pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN", pa.date32(): "DATE", pa.float64(): "DOUBLE"}
    if arrow in simple:
        return simple[arrow]
    raise TypeError(f"no DuckDB type for the lake column type {arrow}")


@dataclasses.dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    etag: str
    size: int


class ObjectCache:
    """Parquet objects copied to local disk once, by bucket, key and ETag.

    A changed object has a new ETag and so a new copy; the directory may be deleted
    at any time. Listing is never cached: what is live is always asked of S3.
    """

    def __init__(self, directory: Path, workers: int = 16) -> None:
        self.directory = directory
        self.workers = workers

    def listing(self, s3: Any, bucket: str, prefix: str) -> list[StoredObject]:
        found = [StoredObject(bucket, o["Key"], o["ETag"].strip('"'), o["Size"])
                 for o in store.list_objects(s3, bucket, prefix) if o["Key"].endswith(".parquet")]
        return sorted(found, key=lambda o: o.key)

    def path(self, stored: StoredObject) -> Path:
        name = hashlib.sha256(f"{stored.bucket}/{stored.key}#{stored.etag}".encode()).hexdigest()
        return self.directory / name[:2] / f"{name}.parquet"

    def fetch_all(self, s3: Any, objects: list[StoredObject]) -> list[str]:
        missing = [o for o in dict.fromkeys(objects) if not self.path(o).exists()]
        if missing:
            self.directory.mkdir(parents=True, exist_ok=True)
            with concurrent.futures.ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(lambda o: self._fetch(s3, o), missing))
        return [str(self.path(o)) for o in objects]

    def _fetch(self, s3: Any, stored: StoredObject) -> None:
        target = self.path(stored)
        target.parent.mkdir(parents=True, exist_ok=True)
        body = s3.get_object(Bucket=stored.bucket, Key=stored.key, IfMatch=stored.etag)["Body"].read()
        partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        partial.write_bytes(body)
        partial.replace(target)  # atomic: a reader never sees half a file


class LocalEngine:
    """DuckDB over the Glue catalog's current partition locations on S3.

    Every lake object it reads is immutable (a version, a log file and a compacted
    generation are written once), so each is fetched once into a local cache keyed by
    its ETag and read from disk after that: a query pays one listing per table, not a
    round trip per file.
    """

    def __init__(self, settings: Settings, glue: Any, s3: Any, cache_dir: Path | None = None) -> None:
        self.settings = settings
        self.catalog = GlueCatalog(glue, settings.glue_database, settings.bucket)
        self.s3 = s3
        self.cache = ObjectCache(cache_dir or settings.local_dir / "query-cache")

    def stored(self, table: str) -> list[StoredObject]:
        """The table's files as Athena sees them: only those under live partition locations."""
        if table == as_of_mod.HISTORY:  # every version prefix, as Athena's projection lists them
            listed = self.cache.listing(self.s3, self.settings.bucket, "tables/revenue/")
            return [o for o in listed if "/version=" in o.key]
        # One listing of tables/<table>/ serves every live location under it; a location
        # elsewhere (none today) is listed from its own common prefix.
        root = f"tables/{table}/"
        locations = [store.split_uri(p.location) for p in self.catalog.partitions(table)]
        chosen = []
        for bucket in sorted({b for b, _ in locations}):
            prefixes = {k if k.endswith("/") else k + "/" for b, k in locations if b == bucket}
            common = posixpath.commonpath(sorted(prefixes)) + "/"
            under_root = bucket == self.settings.bucket and common.startswith(root)
            for found in self.cache.listing(self.s3, bucket, root if under_root else common):
                parents = found.key.split("/")
                if any("/".join(parents[:n]) + "/" in prefixes for n in range(1, len(parents))):
                    chosen.append(found)
        return chosen

    def register(self, connection: duckdb.DuckDBPyConnection, name: str, table: str) -> None:
        """A view ``name`` over the table's local copies, with exactly the catalog's columns.

        DuckDB reads the files itself (no pyarrow dataset, whose import alone costs
        half a second); a column a file lacks reads as NULL, as it does on Athena.
        """
        table_schema = schema.REVENUE if table == as_of_mod.HISTORY else catalog_mod.TABLES[table]
        paths = self.cache.fetch_all(self.s3, self.stored(table))
        files = (connection.read_parquet(paths, union_by_name=True) if paths
                 else connection.sql("SELECT NULL AS none WHERE false"))
        present = set(files.columns) if paths else set()
        columns = [f'CAST({_ident(f.name) if f.name in present else "NULL"} AS {duckdb_type(f.type)}) '
                   f"AS {_ident(f.name)}" for f in table_schema]
        files.select(", ".join(columns)).create_view(name, replace=True)

    def _execute(self, connection: duckdb.DuckDBPyConnection, sql: str,
                 at: dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
        views = load_views()
        names = referenced_tables(sql, views)
        connection.execute("SET TimeZone = 'UTC'")  # the lake's timestamps, and as-of literals, are UTC
        if at is not None:
            return self._execute_as_of(connection, sql, at, views, names)
        for name in names:
            if name in catalog_mod.TABLES or name == as_of_mod.HISTORY:
                self.register(connection, name, name)
        for name in names:
            if name in views:
                body = to_duckdb(views[name], self.settings.glue_database)
                connection.execute(f'CREATE VIEW "{name}" AS {body}')
        return connection.execute(to_duckdb(sql, self.settings.glue_database))

    def _execute_as_of(self, connection: duckdb.DuckDBPyConnection, sql: str, at: dt.datetime,
                       views: Mapping[str, str], names: list[str]) -> duckdb.DuckDBPyConnection:
        tables = [n for n in names if n in catalog_mod.TABLES or n == as_of_mod.HISTORY]
        for name in as_of_mod.stored_tables(tables):
            self.register(connection, f"stored_{name}", name)
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
