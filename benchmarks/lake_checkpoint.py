"""A local stack's lake saved to disk and put back: so a replay of many simulated
months can stop (the machine's processes end) and go on later from where it was.

moto keeps its state in memory only. A checkpoint is every object of every bucket
(body and user metadata) and every Glue table and partition, written beside a
manifest. Saving is incremental: an object already saved under the same ETag is
not read again (the lake's objects are written once). Restoring puts everything
back into a fresh stack before the replay goes on; the replay itself needs
nothing else (its runs are a function of the simulated clock, and the emulator's
figures of the date, seed and clock). What a restore does not carry over is the
emulator's own memory: its report-job ids start over, a few bytes of fetch_log facts.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

_TABLE_INPUT = ("Name", "Description", "Owner", "Retention", "StorageDescriptor", "PartitionKeys",
                "TableType", "Parameters", "ViewOriginalText", "ViewExpandedText")
_PARTITION_INPUT = ("Values", "StorageDescriptor", "Parameters")
_THREADS = 8


def _blob(directory: Path, bucket: str, key: str) -> Path:
    name = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()
    return directory / "objects" / name[:2] / name


def save(s3: Any, glue: Any, directory: Path) -> dict[str, int]:
    """Write the stack's buckets and Glue catalog under ``directory``; returns counts."""
    manifest_path = directory / "manifest.json"
    previous = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"objects": {}}
    objects: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, str, str]] = []
    for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                ident = f"{bucket}/{obj['Key']}"
                known = previous["objects"].get(ident)
                if known and known["etag"] == obj["ETag"] and _blob(directory, bucket, obj["Key"]).exists():
                    objects[ident] = known
                else:
                    todo.append((bucket, obj["Key"], obj["ETag"]))

    def fetch(item: tuple[str, str, str]) -> tuple[str, dict[str, Any]]:
        bucket, key, etag = item
        got = s3.get_object(Bucket=bucket, Key=key)
        path = _blob(directory, bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got["Body"].read())
        return f"{bucket}/{key}", {"bucket": bucket, "key": key, "etag": etag,
                                   "metadata": got.get("Metadata", {})}

    with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
        objects.update(pool.map(fetch, todo))
    catalog: dict[str, Any] = {}
    for db in glue.get_databases()["DatabaseList"]:
        tables = []
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=db["Name"]):
            for table in page["TableList"]:
                partitions = [
                    {k: p[k] for k in _PARTITION_INPUT if k in p}
                    for ppage in glue.get_paginator("get_partitions").paginate(
                        DatabaseName=db["Name"], TableName=table["Name"])
                    for p in ppage["Partitions"]
                ]
                tables.append({"input": {k: table[k] for k in _TABLE_INPUT if k in table},
                               "partitions": partitions})
        catalog[db["Name"]] = tables
    buckets = sorted({o["bucket"] for o in objects.values()}
                     | {b["Name"] for b in s3.list_buckets()["Buckets"]})
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"buckets": buckets, "objects": objects, "catalog": catalog}, default=str))
    os.replace(tmp, manifest_path)  # the manifest names only blobs already written
    return {"objects": len(objects), "read": len(todo),
            "partitions": sum(len(t["partitions"]) for ts in catalog.values() for t in ts)}


def restore(s3: Any, glue: Any, directory: Path, region: str) -> dict[str, int]:
    """Put a saved lake into an empty (or bootstrapped) stack."""
    manifest = json.loads((directory / "manifest.json").read_text())
    for bucket in manifest["buckets"]:
        try:
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            s3.create_bucket(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou",
                                                                  "BucketAlreadyExists"):
                raise

    def put(entry: dict[str, Any]) -> None:
        s3.put_object(Bucket=entry["bucket"], Key=entry["key"], Metadata=entry["metadata"],
                      Body=_blob(directory, entry["bucket"], entry["key"]).read_bytes())

    with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(put, manifest["objects"].values()))
    partitions = 0
    for database, tables in manifest["catalog"].items():
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AlreadyExistsException":
                raise
        for table in tables:
            try:
                glue.create_table(DatabaseName=database, TableInput=table["input"])
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "AlreadyExistsException":
                    raise
                glue.update_table(DatabaseName=database, TableInput=table["input"])
            rows = table["partitions"]
            for start in range(0, len(rows), 100):
                glue.batch_create_partition(DatabaseName=database, TableName=table["input"]["Name"],
                                            PartitionInputList=rows[start:start + 100])
            partitions += len(rows)
    return {"objects": len(manifest["objects"]), "partitions": partitions}
