"""The one alert path: a notifier on task failure.

Writes every notice (an incident opened, an incident resolved, a task that
failed unexpectedly) to the lake (``alerts/log/``, shared by every worker), to
the local alerts log (JSON lines) and, when the Connections exist, to Slack
(incoming webhook) and email (SMTP provider). Which problems page, and only
once, is decided by the library (``ssp_revenue.operate.incidents``); this only delivers.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import requests
from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from ssp_revenue.core.settings import Settings
from ssp_revenue.operate.alerts import AlertLog, LakeAlertLog
from ssp_revenue.operate.runtime import clock_for

log = logging.getLogger(__name__)

SLACK_CONN_ID = "ssp_revenue_slack"
SMTP_CONN_ID = "ssp_revenue_smtp"


class ActionableAlert(AirflowFailException):
    """Fails the task without retries and carries the alerts to the notifier."""

    def __init__(self, message: str, alerts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.alerts = alerts


def alerts_log_path() -> Path:
    default = Path(os.environ.get("AIRFLOW_HOME", ".")) / "alerts.jsonl"
    return Path(os.environ.get("SSP_REVENUE_ALERTS_LOG", str(default)))


def _connection(conn_id: str) -> Any | None:
    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # not configured: that channel is off
        return None


def _text(notices: list[dict[str, Any]]) -> str:
    lines = []
    for n in notices:
        head = f"[{n.get('event', 'alert')}] {n.get('incident_id', n['reason'])}"
        lines.append(f"{head} {n['ssp']} {n['revenue_date']}: {n['detail']}"
                     + (f" (runbook: {n['runbook']})" if n.get("runbook") else ""))
    return "\n".join(lines)


def deliver(notices: list[dict[str, Any]], settings: Settings) -> None:
    """Every channel: the lake's alerts/log/, the local log, Slack and email when configured."""
    now = clock_for(settings).now()
    AlertLog(alerts_log_path()).write(notices, now)
    try:
        from ssp_revenue_airflow.hooks import aws_clients

        s3, _ = aws_clients(settings, os.environ.get("SSP_REVENUE_AWS_CONN_ID", "aws_default"))
        LakeAlertLog(s3, settings.bucket).write(notices, now)
    except Exception:  # the lake unreachable must not swallow the other channels
        log.exception("could not write the notices to the lake's alerts/log/")
    text = _text(notices)
    kinds = sorted({f"{n.get('event', 'alert')} {n['reason']}" for n in notices})
    subject = "ssp-revenue: " + ", ".join(kinds)
    slack = _connection(SLACK_CONN_ID)
    if slack is not None:
        url = slack.password or slack.host
        requests.post(url, data=json.dumps({"text": subject + "\n" + text}),
                      headers={"Content-Type": "application/json"}, timeout=10)
    smtp = _connection(SMTP_CONN_ID)
    if smtp is not None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        recipients = (smtp.extra_dejson or {}).get("to")
        if recipients:
            with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as hook:
                hook.send_email_smtp(to=recipients, subject=subject, html_content=f"<pre>{text}</pre>")
    log.warning("notified: %s", text)


class SspRevenueNotifier(BaseNotifier):
    """On task failure: the incidents the task opened, or the unexpected error itself."""

    template_fields = ()

    def notify(self, context: Any) -> None:
        exception = context.get("exception")
        if isinstance(exception, ActionableAlert) and not exception.alerts:
            log.warning("incident already open, not paged again: %s", exception)
            return
        notices = list(getattr(exception, "alerts", None) or [])
        if not notices:
            ti = context.get("ti")
            where = dict(getattr(exception, "ssp_revenue_context", None) or {})
            notices = [{
                "event": "task_failed",
                "ssp": where.get("ssp", "all"),
                "revenue_date": where.get("revenue_date", ""),
                "reason": "task_failed",
                "step": getattr(ti, "task_id", "?"),
                "detail": f"{type(exception).__name__}: {exception}",
                "runbook": "docs/runbook.md#task_failed",
            }]
        deliver(notices, Settings.from_env())
