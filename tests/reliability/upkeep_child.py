"""Compaction then vacuum in a process that takes one new step and dies: the victim.

Usage: python -m tests.reliability.upkeep_child '<json>' with bucket, database, endpoint,
region, now (ISO), grace_days and journal (a file of the writes earlier victims made).
Writes already in the journal are repeated as the code repeats them; the first write not
in it is made and journalled; the process SIGKILLs itself before the second. Run
until one exits 0, the victims die once at every step boundary, in order. Only this
process is patched; the library has no crash hooks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ssp_revenue.core.settings import Settings
from ssp_revenue.operate import maintenance, runtime

WRITES = {"s3": ("put_object", "delete_objects"), "glue": ("create_partition", "update_partition")}


def _identity(name: str, kwargs: dict[str, Any]) -> str:
    if "Key" in kwargs:
        return f"{name} {kwargs['Key']}"
    if "Delete" in kwargs:
        return f"{name} {kwargs['Delete']['Objects'][0]['Key']}"
    values = kwargs.get("PartitionValueList") or kwargs.get("PartitionInput", {}).get("Values")
    location = kwargs.get("PartitionInput", {}).get("StorageDescriptor", {}).get("Location")
    return f"{name} {kwargs.get('TableName')} {values} {location}"


def one_step_then_die(services: Any, journal: Path) -> None:
    done = set(journal.read_text().splitlines()) if journal.exists() else set()
    new = [0]
    for client, names in ((services.s3, WRITES["s3"]), (services.catalog.glue, WRITES["glue"])):
        for name in names:
            original = getattr(client, name)

            def wrapped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                identity = _identity(_name, kwargs)
                if identity not in done:
                    if new[0] == 1:
                        os.kill(os.getpid(), signal.SIGKILL)
                    new[0] += 1
                    with journal.open("a") as out:
                        out.write(identity + "\n")
                    done.add(identity)
                return _original(*args, **kwargs)

            setattr(client, name, wrapped)


def main() -> None:
    spec = json.loads(sys.argv[1])
    settings = Settings(bucket=spec["bucket"], glue_database=spec["database"], region=spec["region"],
                        aws_endpoint=spec["endpoint"])
    services = runtime.services_for(settings)
    one_step_then_die(services, Path(spec["journal"]))
    now = dt.datetime.fromisoformat(spec["now"])
    maintenance.compact(services.s3, services.catalog, settings, now, everything=True)
    maintenance.vacuum_lake(services.s3, services.catalog, settings, now, apply=True,
                            grace=dt.timedelta(days=spec["grace_days"]))
    print(json.dumps({"finished": True}))


if __name__ == "__main__":
    main()
