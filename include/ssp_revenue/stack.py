"""The embedded local stack: moto's S3+Glue server and the SSP emulator on loopback.

``up`` is idempotent: a live, healthy stack is reused; a crashed or stale one
(dead pid, unhealthy port) is stopped and started afresh, never silently reused.
Addresses go to ``.local/stack.json``, which every local command and fixture reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DEFAULTS = {"bucket": "ssp-revenue", "glue_database": "ssp_revenue", "region": "ap-northeast-1"}
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105 - moto accepts any key; loopback only
    "AWS_DEFAULT_REGION": DEFAULTS["region"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310  # nosec B310 - loopback http
            return bool(200 <= resp.status < 500)
    except OSError:
        return False


def _wait_healthy(url: str, pid: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise RuntimeError(f"service for {url} exited during start-up (see .local/logs)")
        if _healthy(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"service at {url} did not become healthy in {seconds:.0f}s")


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class LocalStack:
    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir.resolve()
        self.state_file = self.local_dir / "stack.json"
        self.log_dir = self.local_dir / "logs"

    def read(self) -> dict[str, Any] | None:
        if not self.state_file.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data

    def healthy(self, state: dict[str, Any] | None = None) -> bool:
        state = state if state is not None else self.read()
        if not state:
            return False
        pids = state.get("pids", {})
        return (
            all(_alive(int(p)) for p in pids.values())
            and _healthy(state["s3_endpoint"] + "/moto-api/")
            and _healthy(state["emulator_url"] + "/_control/health")
        )

    def status(self) -> dict[str, Any]:
        state = self.read()
        return {"running": self.healthy(state), **(state or {})}

    def up(self) -> dict[str, Any]:
        state = self.read()
        if state and self.healthy(state):
            return state
        if state:
            self.down()  # stale or crashed: never reuse half a stack
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **LOCAL_AWS_ENV}
        s3_port, emulator_port = free_port(), free_port()
        bin_dir = Path(sys.executable).parent
        moto = self._spawn(
            [str(bin_dir / "moto_server"), "-H", LOOPBACK, "-p", str(s3_port)], "moto", env
        )
        emulator = self._spawn(
            [sys.executable, "-m", "ssp_revenue.emulator", "--port", str(emulator_port),
             "--s3-endpoint", f"http://{LOOPBACK}:{s3_port}"],
            "emulator", env,
        )
        state = {
            "s3_endpoint": f"http://{LOOPBACK}:{s3_port}",
            "emulator_url": f"http://{LOOPBACK}:{emulator_port}",
            **DEFAULTS,
            "pids": {"moto": moto, "emulator": emulator},
        }
        try:
            _wait_healthy(state["s3_endpoint"] + "/moto-api/", moto)
            _wait_healthy(state["emulator_url"] + "/_control/health", emulator)
        except RuntimeError:
            for pid in (moto, emulator):
                _stop_pid(pid)
            raise
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)
        return state

    def _spawn(self, argv: list[str], name: str, env: dict[str, str]) -> int:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        return process.pid

    def down(self) -> None:
        state = self.read()
        if state:
            for pid in state.get("pids", {}).values():
                _stop_pid(int(pid))
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
