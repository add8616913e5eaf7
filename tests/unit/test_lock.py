"""The dependency locks: every transitive pin, one version per package across them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\[\],-]+)==([^\s;#]+)")


def pins(name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"{name}: not an exact pin: {line!r}"
        out[match.group(1).split("[")[0].lower().replace("_", "-")] = match.group(2)
    return out


def test_the_locks_agree_on_every_shared_package() -> None:
    runtime, local, dev = pins("requirements.txt"), pins("requirements-local.txt"), pins("requirements-dev.txt")
    for other in (local, dev):
        assert {k: other[k] for k in runtime} == runtime
    assert {k: dev[k] for k in local} == local


def test_the_runtime_lock_has_what_the_production_topology_needs_and_no_local_stack() -> None:
    runtime = pins("requirements.txt")
    for needed in ("apache-airflow", "psycopg2-binary", "asyncpg", "celery", "redis", "kombu"):
        assert needed in runtime, needed
    # providers-celery 3.26 imports what celery 5.7 removed.
    assert runtime["celery"].startswith("5.6.")
    for local_only in ("moto", "flask", "werkzeug", "pytest"):
        assert local_only not in runtime, local_only


def test_the_dockerfile_installs_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG REQUIREMENTS=requirements.txt" in dockerfile
    assert "pip install --no-cache-dir -r /opt/ssp-revenue/requirements.txt" in dockerfile
