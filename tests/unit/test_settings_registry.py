import json
from pathlib import Path

import pytest

from ssp_revenue.core.registry import RegistryError, load_registry
from ssp_revenue.core.settings import Settings

CONFIG = Path(__file__).resolve().parents[2] / "include" / "config" / "ssps.yaml"


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.business_tz, s.freeze_hours, s.glue_database, s.clock) == (
        "Asia/Tokyo", 60, "ssp_revenue", "system")


def test_env_overrides_and_stack_file(tmp_path: Path) -> None:
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({
        "s3_endpoint": "http://127.0.0.1:1", "emulator_url": "http://127.0.0.1:2",
        "bucket": "b", "glue_database": "g", "region": "us-east-1"}))
    s = Settings.from_env({
        "SSP_REVENUE_STACK_FILE": str(stack), "SSP_REVENUE_FREEZE_HOURS": "72",
        "SSP_REVENUE_CLOCK": "emulator", "SSP_REVENUE_BUCKET": "override"})
    assert s.freeze_hours == 72
    assert s.aws_endpoint == "http://127.0.0.1:1"
    assert s.bucket == "override"
    assert s.emulator_url == "http://127.0.0.1:2"


@pytest.mark.parametrize("env", [
    {"SSP_REVENUE_BUSINESS_TZ": "Mars/Olympus"},
    {"SSP_REVENUE_FREEZE_HOURS": "0"},
    {"SSP_REVENUE_CLOCK": "emulator"},
    {"SSP_REVENUE_CLOCK": "sundial"},
])
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(Exception):
        Settings.from_env(env)


def test_shipped_registry_loads_and_every_style_has_a_connector() -> None:
    from ssp_emulator.figures import DEFAULT_PROFILES
    from ssp_revenue.ingest.connectors import connector_class

    ssps = load_registry(CONFIG)
    assert "adpulse" in [s.name for s in ssps]
    for ssp in ssps:
        assert connector_class(ssp.style).style == ssp.style
        assert DEFAULT_PROFILES[ssp.name].style == ssp.style  # the emulator serves each one
        assert DEFAULT_PROFILES[ssp.name].currency == ssp.currency


@pytest.mark.parametrize("body,message", [
    ("ssps: []", "non-empty"),
    ("ssps:\n - {name: a1, style: s, connection_id: c, timezone: Asia/Tokyo, currency: jpy}", "ISO 4217"),
    ("ssps:\n - {name: a1, style: s, connection_id: c, timezone: Nowhere/X, currency: JPY}", "time zone"),
    ("ssps:\n - {name: a1, style: s, connection_id: c, timezone: UTC, currency: JPY, colour: red}", "unknown keys"),
    ("ssps:\n - {name: a1, style: s, connection_id: c, timezone: UTC, currency: JPY}\n"
     " - {name: a1, style: s, connection_id: c, timezone: UTC, currency: JPY}", "duplicate"),
])
def test_bad_registry_entries_are_named(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "ssps.yaml"
    path.write_text(body)
    with pytest.raises(RegistryError, match=message):
        load_registry(path)
