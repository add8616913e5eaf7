"""Errors that say where bad input came from, and whether waiting will heal them."""

from __future__ import annotations

import datetime as dt
import enum


class Reason(enum.StrEnum):
    """Why a step did not publish. The convergence policy classifies these."""

    DATA_NOT_READY = "data_not_ready"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    AUTH = "auth"
    MISSING_CONNECTION = "missing_connection"  # no (or an incomplete) credential store entry for the SSP
    MALFORMED = "malformed_report"
    SCHEMA_DRIFT = "schema_drift"
    VALIDATION = "validation_failed"
    WRONG_CURRENCY = "wrong_currency"  # a validation failure: rows in another currency than the SSP's
    STORAGE = "storage_error"
    NO_VERSION_AT_CUTOFF = "no_version_at_cutoff"
    LATE_VERSION = "late_version"
    LEDGER_MISMATCH = "ledger_mismatch"
    LARGE_RESTATEMENT = "large_restatement"
    MISSING_REFERENCE = "missing_reference_data"  # an FX rate or delivery metric for the date
    RULES = "allocation_rules_invalid"
    NOT_CLOSABLE = "month_not_closable"
    STATEMENT_REJECTED = "statement_rejected"  # a statement that failed validation: quarantined
    STATEMENT_VARIANCE = "statement_variance"  # paid differs from frozen + adjustments beyond tolerance
    STATEMENT_OVERDUE = "statement_overdue"  # nothing arrived by expected day + grace
    STATEMENT_CORRECTED = "statement_corrected"  # a corrected statement changes a closed month


class PipelineError(Exception):
    """A failure with its place: SSP, revenue date, file (raw object) and row."""

    reason: Reason = Reason.MALFORMED

    def __init__(
        self,
        message: str,
        *,
        ssp: str | None = None,
        revenue_date: dt.date | None = None,
        file: str | None = None,
        row: int | None = None,
        reason: Reason | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.ssp = ssp
        self.revenue_date = revenue_date
        self.file = file
        self.row = row
        if reason is not None:
            self.reason = reason

    def located(
        self,
        *,
        ssp: str | None = None,
        revenue_date: dt.date | None = None,
        file: str | None = None,
    ) -> PipelineError:
        """Fill in the place where an inner layer did not know it."""
        self.ssp = self.ssp or ssp
        self.revenue_date = self.revenue_date or revenue_date
        self.file = self.file or file
        return self

    def __str__(self) -> str:
        where = []
        if self.ssp:
            where.append(f"ssp={self.ssp}")
        if self.revenue_date:
            where.append(f"revenue_date={self.revenue_date.isoformat()}")
        if self.file:
            where.append(f"file={self.file}")
        if self.row is not None:
            where.append(f"row={self.row}")
        prefix = f"[{self.reason.value}] " + (" ".join(where) + ": " if where else "")
        return prefix + self.message


class DataNotReady(PipelineError):
    reason = Reason.DATA_NOT_READY


class RateLimited(PipelineError):
    reason = Reason.RATE_LIMITED
    retry_after: float | None = None  # seconds, from the Retry-After header


class ServerError(PipelineError):
    reason = Reason.SERVER_ERROR


class FetchTimeout(PipelineError):
    reason = Reason.TIMEOUT


class AuthError(PipelineError):
    reason = Reason.AUTH


class MalformedReport(PipelineError):
    reason = Reason.MALFORMED


class SchemaDrift(PipelineError):
    reason = Reason.SCHEMA_DRIFT


class ValidationFailed(PipelineError):
    reason = Reason.VALIDATION

    def __init__(self, message: str, *, failures: list[str] | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.failures = failures or []


class StorageError(PipelineError):
    reason = Reason.STORAGE


class FreezeProblem(PipelineError):
    """Freezing could not (yet) give a date its final figures; ``reason`` says why."""


class StatementRejected(PipelineError):
    """A monthly statement that cannot be used: it names the SSP, month, file and line."""

    reason = Reason.STATEMENT_REJECTED
