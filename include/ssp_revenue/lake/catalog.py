"""The Glue catalog: tables, and the partition location that says which version is live.

Switching a partition's location is the one atomic step of a publish: readers
see the old version or the new one, never a mix.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
from botocore.exceptions import ClientError

from ssp_revenue.core import schema
from ssp_revenue.core.errors import StorageError

PARQUET_SERDE = {
    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    "Parameters": {"serialization.format": "1"},
}
PARQUET_IN = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

HISTORY = "revenue_history"  # every version of revenue (as-of); see ensure_history
TABLES: dict[str, pa.Schema] = {
    "revenue": schema.REVENUE,
    "publish_log": schema.PUBLISH_LOG,
    "fetch_log": schema.FETCH_LOG,
    "revenue_final": schema.REVENUE_FINAL,
    "revenue_adjustments": schema.REVENUE_ADJUSTMENTS,
    "pipeline_events": schema.PIPELINE_EVENTS,
    "allocation_final": schema.ALLOCATION_FINAL,
    "allocation_changes": schema.ALLOCATION_CHANGES,
    "incidents": schema.INCIDENTS,
    "statements": schema.STATEMENTS,
    "statement_reconciliation": schema.STATEMENT_RECONCILIATION,
    "allocation_trueup": schema.ALLOCATION_TRUEUP,
}


@dataclasses.dataclass(frozen=True)
class Partition:
    table: str
    revenue_date: str
    ssp: str
    location: str
    parameters: dict[str, str]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _storage(table: pa.Schema, location: str) -> dict[str, Any]:
    return {
        "Columns": [
            {"Name": f.name, "Type": schema.athena_type(f.type)}
            for f in schema.data_columns(table)
        ],
        "Location": location,
        "InputFormat": PARQUET_IN,
        "OutputFormat": PARQUET_OUT,
        "SerdeInfo": PARQUET_SERDE,
    }


class GlueCatalog:
    """The project's Glue database. One instance per (client, database, bucket)."""

    def __init__(self, glue: Any, database: str, bucket: str) -> None:
        self.glue = glue
        self.database = database
        self.bucket = bucket
        self._ensured: set[str] = set()  # tables ("": the database) known to exist, looked up once
        self._history: tuple[str, ...] | None = None  # the SSPs revenue_history was last made to list

    def ensure_database(self) -> None:
        """Create the database if absent (looked up first: workers may not create one)."""
        if "" in self._ensured:
            return
        try:
            self.glue.get_database(Name=self.database)
            self._ensured.add("")
            return
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise
        try:
            self.glue.create_database(DatabaseInput={"Name": self.database})
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
        self._ensured.add("")

    def ensure_table(self, name: str) -> None:
        """Create the table if absent; Glue partitions, no projection (see README)."""
        table = TABLES[name]
        table_input = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "StorageDescriptor": _storage(table, f"s3://{self.bucket}/tables/{name}/"),
            "PartitionKeys": [
                {"Name": "revenue_date", "Type": "date"},
                {"Name": "ssp", "Type": "string"},
            ],
        }
        if name in self._ensured:
            return
        try:
            self.glue.get_table(DatabaseName=self.database, Name=name)
            self._ensured.add(name)
            return
        except ClientError as exc:
            if _code(exc) != "EntityNotFoundException":
                raise
        try:
            self.glue.create_table(DatabaseName=self.database, TableInput=table_input)
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
        self._ensured.add(name)

    def ensure_all(self, ssps: list[str] | None = None) -> None:
        """Every table, found in one listing of the database (not a lookup each: every
        daily SSP task bootstraps, and the lookups were a twentieth of its AWS calls)."""
        self.ensure_database()
        every = all(name in self._ensured for name in TABLES)
        if every and (not ssps or tuple(sorted(ssps)) == self._history):
            return  # a replay or a dag.test() bootstraps each run on one catalog
        present = self._tables() if not every or ssps else {}
        for name in TABLES:
            if name in present:
                self._ensured.add(name)
            self.ensure_table(name)
        if ssps:
            self.ensure_history(ssps, present.get(HISTORY))

    def _tables(self) -> dict[str, dict[str, Any]]:
        pages = self.glue.get_paginator("get_tables").paginate(DatabaseName=self.database)
        return {t["Name"]: t for page in pages for t in page.get("TableList", [])}

    def ensure_history(self, ssps: list[str], current: dict[str, Any] | None = None) -> None:
        """``revenue_history``: every version prefix of ``revenue``, for --as-of on Athena.

        Partition projection, not Glue partitions: versions are immutable and many,
        nothing is switched here, and Athena lists each (date, SSP) prefix itself.
        """
        template = f"s3://{self.bucket}/tables/revenue/revenue_date=${{revenue_date}}/ssp=${{ssp}}/"
        table_input: dict[str, Any] = {
            "Name": HISTORY,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {
                "classification": "parquet", "EXTERNAL": "TRUE",
                "projection.enabled": "true",
                "projection.revenue_date.type": "date",
                "projection.revenue_date.format": "yyyy-MM-dd",
                "projection.revenue_date.range": "2020-01-01,NOW",
                "projection.ssp.type": "enum",
                "projection.ssp.values": ",".join(sorted(ssps)),
                "storage.location.template": template,
            },
            "StorageDescriptor": _storage(schema.REVENUE, f"s3://{self.bucket}/tables/revenue/"),
            "PartitionKeys": [{"Name": "revenue_date", "Type": "date"}, {"Name": "ssp", "Type": "string"}],
        }
        if current is None:
            try:
                current = self.glue.get_table(DatabaseName=self.database, Name=HISTORY)["Table"]
            except ClientError as exc:
                if _code(exc) != "EntityNotFoundException":
                    raise
                try:
                    self.glue.create_table(DatabaseName=self.database, TableInput=table_input)
                except ClientError as again:
                    if _code(again) != "AlreadyExistsException":  # another SSP's task, just now
                        raise
                self._history = tuple(sorted(ssps))
                return
        if current.get("Parameters", {}).get("projection.ssp.values") != table_input["Parameters"][
                "projection.ssp.values"]:
            self.glue.update_table(DatabaseName=self.database, TableInput=table_input)
        self._history = tuple(sorted(ssps))

    def table_location(self, name: str) -> str:
        table = self.glue.get_table(DatabaseName=self.database, Name=name)["Table"]
        return str(table["StorageDescriptor"]["Location"])

    def get_partition(self, table: str, revenue_date: str, ssp: str) -> Partition | None:
        try:
            found = self.glue.get_partition(
                DatabaseName=self.database, TableName=table, PartitionValues=[revenue_date, ssp]
            )["Partition"]
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return None
            raise StorageError(f"glue get_partition {table}/{revenue_date}/{ssp}: {exc}") from exc
        return Partition(
            table, revenue_date, ssp, found["StorageDescriptor"]["Location"],
            dict(found.get("Parameters") or {}),
        )

    def set_partition(
        self, table: str, revenue_date: str, ssp: str, location: str,
        parameters: dict[str, str] | None = None,
    ) -> None:
        """Point the partition at ``location``: create it, or switch it in one call."""
        partition_input = {
            "Values": [revenue_date, ssp],
            "StorageDescriptor": _storage(TABLES[table], location),
            "Parameters": parameters or {},
        }
        try:
            self.glue.create_partition(
                DatabaseName=self.database, TableName=table, PartitionInput=partition_input
            )
            return
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise StorageError(f"glue create_partition {table}/{revenue_date}/{ssp}: {exc}") from exc
        try:
            self.glue.update_partition(
                DatabaseName=self.database,
                TableName=table,
                PartitionValueList=[revenue_date, ssp],
                PartitionInput=partition_input,
            )
        except ClientError as exc:
            raise StorageError(f"glue update_partition {table}/{revenue_date}/{ssp}: {exc}") from exc

    def create_partition_once(
        self, table: str, revenue_date: str, ssp: str, location: str, parameters: dict[str, str]
    ) -> bool:
        """Create a partition that must never move (revenue_final). False if it existed."""
        try:
            self.glue.create_partition(
                DatabaseName=self.database,
                TableName=table,
                PartitionInput={
                    "Values": [revenue_date, ssp],
                    "StorageDescriptor": _storage(TABLES[table], location),
                    "Parameters": parameters,
                },
            )
        except ClientError as exc:
            if _code(exc) == "AlreadyExistsException":
                return False
            raise StorageError(f"glue create_partition {table}/{revenue_date}/{ssp}: {exc}") from exc
        return True

    def partitions(self, table: str) -> list[Partition]:
        out: list[Partition] = []
        paginator = self.glue.get_paginator("get_partitions")
        for page in paginator.paginate(DatabaseName=self.database, TableName=table):
            for found in page.get("Partitions", []):
                revenue_date, ssp = found["Values"]
                out.append(
                    Partition(
                        table, revenue_date, ssp, found["StorageDescriptor"]["Location"],
                        dict(found.get("Parameters") or {}),
                    )
                )
        return sorted(out, key=lambda p: (p.revenue_date, p.ssp))
