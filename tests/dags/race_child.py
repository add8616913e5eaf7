"""One daily DAG run in its own process and its own Airflow metadata DB (a second scheduler)."""

from __future__ import annotations

import datetime as dt
import sys


def main() -> None:
    revenue_date = dt.date.fromisoformat(sys.argv[1])
    from airflow.dag_processing.dagbag import DagBag

    from ssp_revenue.core.clock import EmulatorClock
    from ssp_revenue.core.settings import Settings
    from ssp_revenue_airflow import local

    bag = DagBag(dag_folder=str(local.ROOT / "dags"))
    emulator_url = Settings.from_env().emulator_url
    assert emulator_url
    clock = EmulatorClock(emulator_url)
    run = local.run_day(bag.get_dag("ssp_revenue_daily"), revenue_date, clock)
    print(f"STATE {run.state}")


if __name__ == "__main__":
    main()
