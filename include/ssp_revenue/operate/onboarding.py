"""Onboarding an SSP: a candidate registry entry, a Connection template, and a dry run.

A new SSP is tried before it goes live. ``ssp new`` writes its entry to the
candidates file (``ssps.candidates.yaml`` beside ``ssps.yaml``), which no DAG
reads, and a Connection template; ``ssp check`` then runs the whole ingest path
against the SSP (authenticate, fetch, parse, validate) and says what a run would
publish, writing nothing: not to raw/, not to the catalog, not to an alert. Going
live is moving the entry into ``ssps.yaml``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import requests
import yaml

from ssp_revenue.core import registry, styles
from ssp_revenue.core.clock import Clock
from ssp_revenue.core.errors import (
    AuthError,
    DataNotReady,
    FetchTimeout,
    MalformedReport,
    PipelineError,
    RateLimited,
    SchemaDrift,
    ServerError,
    ValidationFailed,
)
from ssp_revenue.core.registry import SspConfig
from ssp_revenue.core.settings import Settings
from ssp_revenue.ingest.connectors import (
    Credentials,
    RetryPolicy,
    build_connector,
    connector_class,
    known_styles,
)
from ssp_revenue.ingest.validate import validate_batches
from ssp_revenue.lake import publish
from ssp_revenue.lake.catalog import GlueCatalog

CANDIDATES = "ssps.candidates.yaml"

# What each auth flow keeps where in its Connection: (login, password, extra), as placeholders.
CONNECTION_FIELDS: dict[str, tuple[str, str, dict[str, str]]] = {
    "async_job": ("<OAuth2 client id>", "<OAuth2 client secret>",
                  {"base_url": "https://<the SSP's API root>"}),
    "rest_json": ("<API key>", "<API secret>", {"base_url": "https://<the SSP's API root>"}),
    "jp_csv": ("<account id>", "<export token (X-Auth-Token)>", {"base_url": "https://<the SSP's API root>"}),
    "file_drop": ("<access key id of the SSP's bucket>", "<secret access key>",
                  {"base_url": "https://s3.<region>.amazonaws.com", "bucket": "<bucket>",
                   "prefix": "<ssp>/daily/", "region": "<region>"}),
    "service_account_job": ("<service-account email>", "<private key (PEM)>",
                            {"base_url": "https://<the SSP's API root>", "network_code": "<network>"}),
}


def connection_fields(style: str) -> tuple[str, str, dict[str, str]]:
    """The Connection's placeholders for a style; a described style's come from its headers."""
    if style in CONNECTION_FIELDS:
        return CONNECTION_FIELDS[style]
    described = styles.load_style(style)
    carried = {field: header for header, field in (described.headers.items() if described else [])}
    return (f"<sent as {carried['login']}>" if "login" in carried else "<account name (not sent)>",
            f"<sent as {carried['password']}>" if "password" in carried else "<not sent>",
            {"base_url": "https://<the SSP's API root>"})


class OnboardingError(Exception):
    """What went wrong, and what to fix: in the YAML entry or in the Connection."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}\n  fix: {fix}")
        self.problem = problem
        self.fix = fix


class UnknownSsp(OnboardingError):
    """Neither registry file has the SSP: what ``ssp new`` expects, and ``ssp check`` refuses."""


@dataclasses.dataclass(frozen=True)
class DryRun:
    """What ``ssp check`` found; nothing of it was written anywhere."""

    ssp: str
    revenue_date: dt.date
    body_bytes: int
    body_sha256: str
    totals: dict[str, Any]
    checks: int
    first_rows: list[dict[str, Any]]
    version: str
    live_version: str | None

    @property
    def would(self) -> str:
        if self.live_version == self.version:
            return f"nothing: version {self.version} is already live (same figures)"
        if self.live_version is None:
            return f"publish version {self.version} (the first for this date)"
        return f"publish version {self.version}, replacing live version {self.live_version}"

    def render(self) -> str:
        lines = [
            f"ssp {self.ssp}, revenue date {self.revenue_date}: authenticated, fetched, parsed, validated",
            f"  report: {self.body_bytes:,} bytes, sha256 {self.body_sha256[:16]}",
            f"  totals: {self.totals['rows']:,} rows, {self.totals['impressions']:,} impressions, "
            f"{self.totals['clicks']:,} clicks, revenue {self.totals['revenue']}",
            f"  checks passed: {self.checks}",
            f"  a run would: {self.would}",
            f"  first {len(self.first_rows)} rows (canonical):",
        ]
        lines += [f"    {json.dumps(row, default=str, ensure_ascii=False)}" for row in self.first_rows]
        lines.append("  written: nothing (no raw body, no catalog change, no alert)")
        return "\n".join(lines)


def candidates_path(settings: Settings) -> Path:
    return settings.config_dir / CANDIDATES


def find_config(settings: Settings, name: str) -> tuple[SspConfig, bool]:
    """The SSP's entry and whether it is live (in ssps.yaml) or still a candidate.

    Raises:
        OnboardingError: neither file has it, or its entry is invalid.
    """
    live_path = settings.config_dir / "ssps.yaml"
    for path, live in ((live_path, True), (candidates_path(settings), False)):
        if not path.exists():
            continue
        try:
            entries = registry.load_registry(path)
        except registry.RegistryError as exc:
            raise OnboardingError(str(exc), f"correct the entry in {path}") from None
        for config in entries:
            if config.name == name:
                return config, live
    raise UnknownSsp(f"ssp {name!r} is in neither {live_path.name} nor {CANDIDATES}",
                          f"ssp-revenue ssp new {name} --like <style> (styles: {', '.join(known_styles())})")


def new_candidate(settings: Settings, name: str, like: str, *, timezone: str,
                  currency: str) -> tuple[Path, Path]:
    """Append a candidate entry of style ``like`` and write its Connection template.

    Returns:
        The candidates file and the template's path.

    Raises:
        OnboardingError: the style is unknown, or the name is taken or invalid.
    """
    if like not in known_styles():
        raise OnboardingError(f"no report style {like!r}", f"--like one of {', '.join(known_styles())}")
    try:
        find_config(settings, name)
    except UnknownSsp:
        pass
    else:
        raise OnboardingError(f"ssp {name!r} already has an entry", "choose another name or edit that entry")
    entry: dict[str, Any] = {
        "name": name, "style": like, "connection_id": f"ssp_{name}", "timezone": timezone,
        "currency": currency, "available_after": "D+1 06:00", "tz_policy": _tz_policy(like, timezone),
        "restatement_horizon_hours": 48,
    }
    path = candidates_path(settings)
    current = yaml.safe_load(path.read_text()) if path.exists() else None
    document = current if isinstance(current, dict) else {"ssps": []}
    document.setdefault("ssps", []).append(entry)
    staged = path.with_suffix(".yaml.new")
    staged.write_text(
        "# Candidate SSPs: tried with `ssp-revenue ssp check NAME --date D`, never run by the DAGs.\n"
        "# Going live is moving the entry into ssps.yaml.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    try:
        registry.load_registry(staged)
    except registry.RegistryError as exc:
        staged.unlink()
        raise OnboardingError(str(exc).replace(str(staged), str(path)),
                              "pass a valid name, zone and currency") from None
    staged.replace(path)
    template = settings.config_dir / "connections" / f"ssp_{name}.json"
    template.parent.mkdir(parents=True, exist_ok=True)
    login, password, extra = connection_fields(like)
    template.write_text(json.dumps({"conn_type": "http", "login": login, "password": password,
                                    "extra": extra}, indent=2) + "\n")
    return path, template


def _tz_policy(style: str, timezone: str) -> str:
    """Hourly reports are re-bucketed; a daily one in another zone books its own day."""
    described = styles.load_style(style)
    if style in ("service_account_job",) or (described is not None and described.hourly):
        return "hourly_rebucketed"
    return "business_zone" if timezone == "Asia/Tokyo" else "ssp_date"


def credentials_from_connection(data: dict[str, Any]) -> Credentials:
    """Credentials from an Airflow-style Connection JSON (the template's shape).

    Raises:
        OnboardingError: the login, password or base URL is missing or still a placeholder.
    """
    extra = dict(data.get("extra") or {})
    base_url = extra.pop("base_url", None) or data.get("base_url") or data.get("host")
    login, secret = data.get("login"), data.get("password", data.get("secret"))
    for field, value in (("login", login), ("password", secret), ("extra.base_url", base_url)):
        if not value or str(value).startswith("<"):
            raise OnboardingError(f"the Connection's {field} is not filled in",
                                  f"set {field} in the Connection JSON")
    return Credentials(base_url=str(base_url), login=str(login), secret=str(secret), extra=extra)


def check(config: SspConfig, credentials: Credentials, settings: Settings, clock: Clock, *,
          catalog: GlueCatalog, revenue_date: dt.date, sample: int = 5) -> DryRun:
    """Authenticate, fetch, parse and validate one date; read the live version; write nothing.

    The body stays in this process (memory or a local temporary file); the catalog
    is only read.

    Raises:
        OnboardingError: any step failed; it says what to fix.
    """
    connector = build_connector(config, credentials, settings, clock,
                                retry=RetryPolicy(attempts=2, initial=0.5, maximum=2.0))
    where = f"ssp {config.name}, revenue date {revenue_date}"
    try:
        report = connector.fetch(revenue_date)
        body = report.body.read()

        def read() -> Any:
            return connector_class(config.style).read_batches(
                config, lambda: io.BytesIO(body), report.facts, revenue_date)

        first = read()
        rows: list[dict[str, Any]] = []
        batches = _peek(first, rows, sample)
        result = validate_batches(batches, config=config, revenue_date=revenue_date, file="(dry run)",
                                  again=read)
    except PipelineError as exc:
        raise OnboardingError(f"{where}: {exc}", _fix_for(exc, config)) from None
    except requests.RequestException as exc:
        raise OnboardingError(f"{where}: cannot reach {credentials.base_url}: {exc}",
                              f"check extra.base_url in Connection {config.connection_id}") from None
    live = publish.live_report(catalog, config.name, revenue_date)
    return DryRun(
        ssp=config.name, revenue_date=revenue_date, body_bytes=len(body), body_sha256=report.body.sha256,
        totals=result.totals.to_dict(), checks=result.checks, first_rows=rows,
        version=result.digest[:publish.VERSION_CHARS],
        live_version=live.parameters.get("source_version") if live is not None else None,
    )


def _peek(batches: Any, into: list[dict[str, Any]], count: int) -> Any:
    """The same batches, keeping the first ``count`` rows aside for the screen."""
    def gen() -> Any:
        for batch in batches.batches:
            if len(into) < count:
                into.extend(batch.slice(0, count - len(into)).to_pylist())
            yield batch

    return dataclasses.replace(batches, batches=gen())


def _fix_for(exc: PipelineError, config: SspConfig) -> str:
    conn = f"Connection {config.connection_id}"
    if isinstance(exc, AuthError):
        return f"the SSP refused the credentials: check login and password in {conn}"
    if isinstance(exc, DataNotReady):
        return (f"the report is not ready: try an earlier --date, or set available_after for {config.name} "
                f"(now {config.available_after!r}) to when its report is complete")
    if isinstance(exc, RateLimited | ServerError | FetchTimeout):
        return "the SSP is failing or throttling right now: run the check again later"
    if isinstance(exc, SchemaDrift):
        return (f"the report's columns are not what style {config.style!r} reads: pick the style that "
                f"matches (ssp new --like) or ask the SSP for that report layout")
    if isinstance(exc, ValidationFailed):
        return (f"the figures break the rules above: check currency ({config.currency}), timezone "
                f"({config.timezone}) and tz_policy ({config.tz_policy}) in the entry for {config.name}")
    if isinstance(exc, MalformedReport):
        return f"the body is not what style {config.style!r} parses: check the entry's style and options"
    return f"see the error above; the entry for {config.name} and {conn} are what this check uses"
