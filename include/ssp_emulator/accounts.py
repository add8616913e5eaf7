"""Emulated accounts for SSPs of described styles: a new SSP is demoed without code.

Every entry of the registry, live or candidate (``ssps.yaml``, ``ssps.candidates.yaml``), whose
style is described in YAML and which has no hand-made demo profile gets one: its zone and
currency from the entry, amounts in the units its description reads, and demo credentials
that ``/_control/credentials/<ssp>`` hands out like a Connection.
"""

from __future__ import annotations

from pathlib import Path

from ssp_emulator.figures import DEFAULT_PROFILES, SspProfile
from ssp_revenue.core import registry, styles

REGISTRY_FILES = ("ssps.yaml", "ssps.candidates.yaml")


def described_profiles(config_dir: Path | None = None) -> dict[str, SspProfile]:
    directory = config_dir or styles.styles_dir().parent
    out: dict[str, SspProfile] = {}
    for file in REGISTRY_FILES:
        path = directory / file
        if not path.exists():
            continue
        for entry in registry.load_registry(path):
            described = styles.load_style(entry.style, directory / "styles")
            if entry.name in DEFAULT_PROFILES or described is None:
                continue
            money = described.column("revenue")
            unit = money.unit if money is not None else "decimal"
            out[entry.name] = SspProfile(
                name=entry.name, style=entry.style, timezone=entry.timezone, currency=entry.currency,
                client_id=f"{entry.name}-login", client_secret=f"{entry.name}-demo-secret",
                money_unit_micros=1_000_000 if unit == "whole" else 1,
            )
    return out
