"""Bootstrapping the lake's catalog on the local stack: idempotent, and on one catalog
object (a replay, a dag.test()) a bootstrap that changes nothing asks Glue nothing."""

from __future__ import annotations

from typing import Any

import pytest

from ssp_revenue.lake.catalog import HISTORY, TABLES

from .conftest import Lake

pytestmark = pytest.mark.integration


def _glue_calls(env: Lake) -> list[str]:
    calls: list[str] = []

    def seen(model: Any, **_: Any) -> None:
        calls.append(model.name)

    env.services.catalog.glue.meta.events.register("before-call.glue", seen)
    return calls


def test_a_bootstrap_that_changes_nothing_asks_glue_nothing(lake_env: Lake) -> None:
    env = lake_env  # bootstrapped once already, with the registry's SSPs
    catalog = env.services.catalog
    names = sorted(c.name for c in env.registry)
    calls = _glue_calls(env)
    catalog.ensure_all(names)
    catalog.ensure_all(list(reversed(names)))
    assert calls == []

    catalog.ensure_all([*names, "newssp"])  # an SSP onboarded: revenue_history lists it
    assert "UpdateTable" in calls
    table = catalog.glue.get_table(DatabaseName=catalog.database, Name=HISTORY)["Table"]
    assert table["Parameters"]["projection.ssp.values"] == ",".join(sorted([*names, "newssp"]))

    fresh = type(catalog)(catalog.glue, catalog.database, catalog.bucket)  # another task's
    calls.clear()
    fresh.ensure_all([*names, "newssp"])
    assert "GetTables" in calls and "UpdateTable" not in calls and "CreateTable" not in calls
    present = {t["Name"] for t in catalog.glue.get_tables(DatabaseName=catalog.database)["TableList"]}
    assert set(TABLES) | {HISTORY} <= present
