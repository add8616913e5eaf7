"""The real-scheduler test's sequence through dag.test(), on this worker (see
tests/scheduler/reference.py): its lake is what the scheduler's must equal."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ..scheduler import reference


def test_the_topology_sequence_through_dag_test(
        stack_state: dict[str, object], emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = reference.snapshot_file()
    try:
        result = reference.through_dag_test(monkeypatch, tmp_path)
    except BaseException as exc:  # the topology test waits for this file: tell it at once
        _write(path, {"error": f"{type(exc).__name__}: {exc}"})
        raise
    _write(path, result)
    assert result["snapshot"]["tables"]["revenue"], "the reference published nothing"
    print(f"\nthe topology's {len(reference.SEQUENCE)} daily runs through dag.test(): {result['seconds']:.1f}s")


def _write(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(content, sort_keys=True))
    scratch.replace(path)  # atomic: the reader sees all of it or nothing
