"""The embedded local stack: moto's S3+Glue server and the SSP emulator on loopback.

``up`` is idempotent: a live, healthy stack is reused; a crashed or stale one
(dead pid, unhealthy port) is stopped and started afresh, never silently reused.
Addresses go to ``.local/stack.json``, which every local command and fixture reads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Container
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


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def responds(url: str, statuses: Container[int] = range(200, 500), timeout: float = 2.0) -> bool:
    """Whether ``url`` answers with one of ``statuses`` (any non-5xx by default)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310  # nosec B310 - loopback http
            return resp.status in statuses
    except OSError:
        return False


def wait_until(check: Callable[[], bool], what: str, pid: int, seconds: float = 60.0) -> None:
    """Until ``check()`` holds; fails at once if the process ``pid`` exits meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            raise RuntimeError(f"{what} exited during start-up (see its log under .local)")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready in {seconds:.0f}s")


def stop_pid(pid: int) -> None:
    stop_pids([pid])


def stop_pids(pids: list[int], seconds: float = 5.0) -> None:
    """SIGTERM every process group at once, SIGKILL what still runs after ``seconds``.

    One grace period for all of them, not one each: a stack of seven processes that
    each finish their shutdown slowly stops in seconds, not half a minute.
    """
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def spawn(argv: list[str], log_file: Path, env: dict[str, str], cwd: Path | None = None) -> int:
    """A service in its own session (so ``stop_pid`` stops its children too), logging to a file."""
    log = log_file.open("ab")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True, cwd=str(cwd) if cwd else None,
    )
    return process.pid


def read_state(path: Path) -> dict[str, Any] | None:
    """A state file written by ``write_state``; none if absent or unreadable."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a reader sees the old state or the new one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


class LocalStack:
    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir.resolve()
        self.state_file = self.local_dir / "stack.json"
        self.log_dir = self.local_dir / "logs"

    def read(self) -> dict[str, Any] | None:
        return read_state(self.state_file)

    def healthy(self, state: dict[str, Any] | None = None) -> bool:
        state = state if state is not None else self.read()
        if not state:
            return False
        pids = state.get("pids", {})
        return (
            all(alive(int(p)) for p in pids.values())
            and responds(state["s3_endpoint"] + "/moto-api/")
            and responds(state["emulator_url"] + "/_control/health")
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
        if importlib.util.find_spec("ssp_emulator") is None:  # looked up, never imported here
            raise RuntimeError("the SSP emulator (include/ssp_emulator) is not importable: put the "
                               "checkout's include/ on PYTHONPATH, as the Makefile does")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **LOCAL_AWS_ENV}
        s3_port, emulator_port = free_port(), free_port()
        moto = self._spawn(
            [sys.executable, "-m", "ssp_emulator.local_aws", "-H", LOOPBACK, "-p", str(s3_port)], "moto", env
        )
        emulator = self._spawn(
            [sys.executable, "-m", "ssp_emulator", "--port", str(emulator_port),
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
            wait_until(lambda: responds(state["s3_endpoint"] + "/moto-api/"), "moto", moto)
            wait_until(lambda: responds(state["emulator_url"] + "/_control/health"), "the emulator",
                       emulator)
        except RuntimeError:
            stop_pids([moto, emulator])
            raise
        write_state(self.state_file, state)
        return state

    def _spawn(self, argv: list[str], name: str, env: dict[str, str]) -> int:
        return spawn(argv, self.log_dir / f"{name}.log", env)

    def down(self) -> None:
        state = self.read()
        if state:
            stop_pids([int(pid) for pid in state.get("pids", {}).values()])
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
