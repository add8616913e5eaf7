"""The awswrangler side of the publish benchmark: runs in .venv-bench (pyarrow < 26).

Reads the same Parquet file the other contenders publish, then times
``wr.s3.to_parquet(dataset=True, mode="overwrite_partitions")`` with Glue
registration against the same moto endpoint. Prints one JSON line of timings.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    spec = json.loads(sys.argv[1])
    import awswrangler as wr
    import boto3
    import pandas as pd

    wr.config.s3_endpoint_url = spec["endpoint"]
    wr.config.glue_endpoint_url = spec["endpoint"]
    session = boto3.Session(region_name=spec["region"])
    frame = pd.read_parquet(spec["data"], dtype_backend="pyarrow")
    try:
        wr.catalog.create_database(spec["database"], boto3_session=session, exist_ok=True)
    except Exception:  # nosec B110: moto may already have it
        pass
    timings = []
    first = 0.0
    for run in range(spec["runs"] + 1):  # run 0 creates the Glue table; later runs append to it
        started = time.perf_counter()
        wr.s3.to_parquet(
            df=frame.assign(run=str(run)), path=f"s3://{spec['bucket']}/wrangler/revenue/", dataset=True,
            mode="overwrite_partitions", partition_cols=["run"], database=spec["database"],
            table="wrangler_revenue", boto3_session=session, compression="snappy",
        )
        if run:
            timings.append(time.perf_counter() - started)
        else:
            first = time.perf_counter() - started
    print(json.dumps({"awswrangler": timings, "first": first, "version": wr.__version__}))


if __name__ == "__main__":
    main()
