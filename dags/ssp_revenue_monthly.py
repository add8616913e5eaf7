"""Monthly close: on SSP_REVENUE_CLOSE_DAY (default the 3rd) at 09:00 JST, close the previous month.

It writes the accounting CSV, its manifest and the HTML report under
closes/month=YYYY-MM/issue=NNN/. If any date of the month is not frozen or not
allocated, the task fails with one actionable alert listing what is missing.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from ssp_revenue_airflow import tasks as steps
from ssp_revenue_airflow.notifier import SspRevenueNotifier
from ssp_revenue_airflow.scheduling import monthly_dag_arguments


@dag(
    dag_id="ssp_revenue_monthly_close",
    **monthly_dag_arguments(),
    max_active_runs=1,
    default_args={"retries": 1, "on_failure_callback": [SspRevenueNotifier()]},
    params={"month": Param(None, type=["null", "string"], description="month to close, YYYY-MM")},
    tags=["ssp-revenue"],
)
def ssp_revenue_monthly_close() -> None:
    @task(multiple_outputs=False)
    def close_previous_month() -> dict[str, Any]:
        return steps.close_month(get_current_context())

    close_previous_month()


ssp_revenue_monthly_close()
