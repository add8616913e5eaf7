"""The Athena DDL in include/sql matches the schema the code writes."""

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from ssp_revenue.core import schema
from ssp_revenue.lake import catalog

SQL = Path(__file__).resolve().parents[2] / "include" / "sql"


@pytest.mark.parametrize("table", sorted(catalog.TABLES))
def test_ddl_parses_and_matches_the_arrow_schema(table: str) -> None:
    tree = sqlglot.parse_one((SQL / f"{table}.sql").read_text(), read="athena")
    assert isinstance(tree, exp.Create)
    columns = {
        c.name: c.args["kind"].sql(dialect="hive").lower()
        for c in tree.this.expressions if isinstance(c, exp.ColumnDef)
    }
    partitions = tree.find(exp.PartitionedByProperty)
    assert partitions is not None
    keys = {c.name: c.args["kind"].sql(dialect="hive").lower()
            for c in partitions.find_all(exp.ColumnDef)}
    assert keys == {"revenue_date": "date", "ssp": "string"}
    expected = {f.name: schema.athena_type(f.type).replace(",", ", ")
                for f in schema.data_columns(catalog.TABLES[table])}
    normalised = {k: v.replace(", ", ",").replace(",", ", ") for k, v in columns.items()}
    assert normalised == expected
