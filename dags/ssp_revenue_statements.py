"""Monthly statements: daily at 10:00 business time, fetch, reconcile and true up the recent months.

For every SSP whose registry entry declares a statement, the last
SSP_REVENUE_STATEMENT_MONTHS ended months: the statement is fetched where the
SSP serves it (its API, its bucket; an uploaded one is already landed), landed
raw, validated, published, reconciled with what was frozen and, within
tolerance, booked as a true-up; a closed month is reissued. Each real problem
opens one incident (the task fails once, with the page); a rerun is a no-op.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier
from ssp_revenue_airflow.scheduling import STATEMENTS_CRON, upkeep_dag_arguments


@dag(
    dag_id="ssp_revenue_statements",
    **upkeep_dag_arguments(STATEMENTS_CRON),
    max_active_runs=1,
    default_args={"retries": 1, "on_failure_callback": [SspRevenueNotifier()]},
    tags=["ssp-revenue"],
)
def ssp_revenue_statements() -> None:
    @task(multiple_outputs=False)
    def reconcile_statements() -> dict[str, Any]:
        return steps.reconcile_statements(get_current_context())

    reconcile_statements()


ssp_revenue_statements()
