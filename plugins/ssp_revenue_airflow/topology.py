"""The production topology on one machine, without Docker.

PostgreSQL and Redis from Debian's packages, then Airflow's api-server,
scheduler, dag-processor, triggerer and a Celery worker as processes, every one
bound to 127.0.0.1 on a free port, with the settings of ``airflow.env`` (the
file docker-compose.yaml reads too). PIDs and addresses go to
``.local/airflow-topology/topology.json``; ``down`` stops them. It points the
DAGs at the embedded stack (moto + emulator), which ``up`` starts if needed.

Importing this module does not import Airflow: it only starts Airflow's processes.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ssp_revenue.operate import stack
from ssp_revenue_airflow import local

ROOT = local.ROOT
SHARED_ENV_FILE = ROOT / "airflow.env"
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")


def shared_environment(path: Path = SHARED_ENV_FILE) -> dict[str, str]:
    """``airflow.env``: KEY=VALUE lines, comments and blanks ignored."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: install Debian's postgresql (make services)")
    return found[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the ``postgres`` user Debian's package made."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class AirflowTopology:
    """Airflow's production processes on loopback, with their metadata DB and broker."""

    def __init__(self, local_dir: Path, *, executor: str | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.local_dir = local_dir.resolve()
        self.dir = self.local_dir / "airflow-topology"
        self.state_file = self.dir / "topology.json"
        self.log_dir = self.dir / "logs"
        self.executor = executor
        self.extra_env = dict(extra_env or {})
        # PostgreSQL runs as the `postgres` user, which may not be able to reach a
        # checkout under a private home directory: its files live under /tmp instead.
        tag = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
        self.pg_dir = Path(tempfile.gettempdir()) / f"ssp-revenue-pg-{tag}"

    # -- state ---------------------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        return stack.read_state(self.state_file)

    def _write(self, state: dict[str, Any]) -> None:
        stack.write_state(self.state_file, state)

    def environment(self, state: dict[str, Any] | None = None) -> dict[str, str]:
        """What every Airflow process (and an ``airflow`` CLI call against it) runs with."""
        state = state or self.read()
        if state is None:
            raise RuntimeError("the Airflow topology is not up (make airflow)")
        env: dict[str, str] = dict(state["env"])
        return env

    def airflow(self, *args: str, check: bool = True,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command against this deployment's metadata DB."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env={**os.environ, **self.environment()}, check=check, capture_output=True, text=True,
            timeout=timeout,
        )

    # -- start ---------------------------------------------------------------
    def up(self, *, fresh: bool = False) -> dict[str, Any]:
        """Start what is not running; ``fresh`` starts from an empty metadata DB."""
        state = self.read()
        if state and self.healthy(state) and not fresh:
            return state
        if state:
            self.down()
        if fresh:
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(self.pg_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        local_stack = stack.LocalStack(self.local_dir)
        local_stack.up()
        pg_port, redis_port, api_port, health_port = (stack.free_port() for _ in range(4))
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        pids: dict[str, int] = {}
        try:
            pids["postgres"] = self._start_postgres(pg_port)
            pids["redis"] = self._start_redis(redis_port)
            env = self._build_environment(home, pg_port, redis_port, api_port, health_port,
                                          local_stack.state_file)
            state = {"env": env, "pids": pids, "ports": {
                "postgres": pg_port, "redis": redis_port, "api": api_port,
                "scheduler_health": health_port}, "ui": f"http://{stack.LOOPBACK}:{api_port}"}
            self._write(state)
            # Every start (a no-op when current), not local.migrate_db's once-per-home marker:
            # the database lives under /tmp and may be gone while .local is not.
            migrate = subprocess.run(
                [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                env={**os.environ, **env}, capture_output=True, text=True, check=False)
            if migrate.returncode != 0:
                raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
            for name in AIRFLOW_PROCESSES:
                pids[name] = self._spawn_airflow(name, env)
                self._write(state)
            stack.wait_until(lambda: stack.responds(
                f"http://{stack.LOOPBACK}:{api_port}/api/v2/monitor/health", statuses=(200,)),
                "api-server", pids["api-server"], seconds=120)
            stack.wait_until(lambda: stack.responds(
                f"http://{stack.LOOPBACK}:{health_port}/health", statuses=(200,)),
                "scheduler", pids["scheduler"], seconds=120)
        except Exception:
            self.down()
            raise
        return state

    def _start_postgres(self, port: int) -> int:
        data = self.pg_dir / "data"
        sockets = self.pg_dir / "sockets"
        self.pg_dir.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.pg_dir, pwd.getpwnam("postgres").pw_uid, -1)
        if not (data / "PG_VERSION").exists():
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            sockets.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                uid = pwd.getpwnam("postgres").pw_uid
                for path in (data, sockets):
                    os.chown(path, uid, -1)
            subprocess.run(_as_postgres([_postgres_bin("initdb"), "-D", str(data), "-U", "airflow",
                                         "--auth=trust", "-E", "UTF8"]),
                           check=True, capture_output=True)
        pid = self._spawn(_as_postgres([
            _postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
            "-c", f"listen_addresses={stack.LOOPBACK}", "-c", "fsync=off",
            "-c", "max_connections=200"]), "postgres", dict(os.environ))
        isready = _postgres_bin("pg_isready")
        stack.wait_until(lambda: subprocess.run([isready, "-h", stack.LOOPBACK, "-p", str(port)],
                                                capture_output=True, check=False).returncode == 0,
                         "postgres", pid, seconds=120)
        created = subprocess.run(
            [_postgres_bin("createdb"), "-h", stack.LOOPBACK, "-p", str(port), "-U", "airflow", "airflow"],
            capture_output=True, text=True, check=False)
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise RuntimeError(f"createdb failed: {created.stderr}")
        return pid

    def _start_redis(self, port: int) -> int:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server not found: install Debian's redis-server (make services)")
        return self._spawn([server, "--bind", stack.LOOPBACK, "--port", str(port), "--save", "",
                            "--appendonly", "no", "--protected-mode", "yes"], "redis", dict(os.environ))

    def _build_environment(self, home: Path, pg_port: int, redis_port: int, api_port: int,
                           health_port: int, stack_file: Path) -> dict[str, str]:
        from cryptography.fernet import Fernet

        db = f"postgresql+psycopg2://airflow@{stack.LOOPBACK}:{pg_port}/airflow"
        env = {
            **local.airflow_environment(self.dir),
            **shared_environment(),
            **local.stack_environment(stack_file),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{stack.LOOPBACK}:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://airflow@{stack.LOOPBACK}:{pg_port}/airflow",
            "AIRFLOW__API__HOST": stack.LOOPBACK,
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://{stack.LOOPBACK}:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{stack.LOOPBACK}:{api_port}/execution/",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health_port),
            # Secrets every component must share; 64 bytes is Airflow 3.3's minimum for the JWT one.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "SSP_REVENUE_ALERTS_LOG": str(self.dir / "alerts.jsonl"),
        }
        if self.executor:
            env["AIRFLOW__CORE__EXECUTOR"] = self.executor
        env.update(self.extra_env)
        return env

    def _spawn_airflow(self, name: str, env: dict[str, str]) -> int:
        airflow = str(Path(sys.executable).parent / "airflow")
        argv = {
            "api-server": [airflow, "api-server", "--host", stack.LOOPBACK, "--port",
                           env["AIRFLOW__API__PORT"], "--workers", "1"],
            # Log servers bind every interface (hard-coded): off; logs are local files here.
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
            "worker": [airflow, "celery", "worker", "--skip-serve-logs", "--without-gossip",
                       "--without-mingle"],
        }[name]
        if name == "worker" and env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            argv = [sys.executable, "-c", "import time; time.sleep(10**9)"]  # LocalExecutor: no worker
        return self._spawn(argv, name, {**os.environ, **env})

    def _spawn(self, argv: list[str], name: str, env: dict[str, str]) -> int:
        return stack.spawn(argv, self.log_dir / f"{name}.log", env, cwd=ROOT)

    # -- the metadata DB -----------------------------------------------------
    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """A query against this deployment's metadata DB (runs, task instances, DAGs)."""
        import psycopg2

        state = self.read()
        assert state is not None
        with psycopg2.connect(host=stack.LOOPBACK, port=int(state["ports"]["postgres"]), user="airflow",
                              dbname="airflow") as conn, conn.cursor() as cur:
            cur.execute(query, params)
            rows: list[tuple[Any, ...]] = cur.fetchall() if cur.description else []
        return rows

    def wait_for_dag(self, dag_id: str, seconds: float = 180) -> None:
        """Until the dag-processor has parsed ``dag_id``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.sql("SELECT 1 FROM dag WHERE dag_id = %s", dag_id):
                return
            time.sleep(1)
        raise RuntimeError(f"{dag_id} was not parsed by the dag-processor in {seconds:.0f}s")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first."""
        rows = self.sql(
            "SELECT run_id, run_type, state, logical_date, data_interval_start, data_interval_end, "
            "start_date, end_date, conf FROM dag_run WHERE dag_id = %s ORDER BY id", dag_id)
        keys = ("run_id", "run_type", "state", "logical_date", "interval_start", "interval_end",
                "start_date", "end_date", "conf")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def wait_for_runs(self, dag_id: str, count: int, seconds: float = 900) -> list[dict[str, Any]]:
        """Until ``count`` runs of the DAG exist and none is queued or running."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            runs = self.runs(dag_id)
            if len(runs) >= count and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            time.sleep(2)
        raise RuntimeError(f"runs of {dag_id} did not finish in {seconds:.0f}s: {self.runs(dag_id)}")

    # -- operate -------------------------------------------------------------
    def healthy(self, state: dict[str, Any] | None = None) -> bool:
        state = state or self.read()
        if not state:
            return False
        pids = state.get("pids", {})
        if set(pids) != {"postgres", "redis", *AIRFLOW_PROCESSES}:
            return False
        return all(stack.alive(int(p)) for p in pids.values()) and stack.responds(
            f"http://{stack.LOOPBACK}:{state['ports']['scheduler_health']}/health", statuses=(200,))

    def kill(self, name: str) -> None:
        """SIGKILL one process and everything it started (a worker crash, not a shutdown)."""
        import signal

        state = self.read()
        assert state is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(state["pids"][name]), signal.SIGKILL)

    def restart(self, name: str) -> None:
        state = self.read()
        assert state is not None
        stack.stop_pid(int(state["pids"][name]))
        state["pids"][name] = self._spawn_airflow(name, state["env"])
        self._write(state)

    def reconfigure(self, changes: dict[str, str], names: tuple[str, ...] = (
            "dag-processor", "scheduler", "worker")) -> None:
        """Change settings and restart the processes that read them (a deploy, on one machine)."""
        state = self.read()
        assert state is not None
        state["env"].update(changes)
        self._write(state)
        for name in names:
            self.restart(name)

    def down(self) -> None:
        state = self.read()
        if state:
            pids = state.get("pids", {})
            # Airflow first, then what it depends on.
            stack.stop_pids([int(pids[n]) for n in AIRFLOW_PROCESSES if n in pids])
            stack.stop_pids([int(pids[n]) for n in ("redis", "postgres") if n in pids])
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssp_revenue_airflow.topology")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--executor", default=None, help="CeleryExecutor (default) or LocalExecutor")
    args = parser.parse_args(argv)
    local_dir = Path(os.environ.get("SSP_REVENUE_LOCAL_DIR", ".local"))
    topology = AirflowTopology(local_dir, executor=args.executor)
    if args.action == "down":
        topology.down()
        return 0
    if args.action == "status":
        state = topology.read()
        print(json.dumps({"running": topology.healthy(state), **({} if not state else {
            "ui": state["ui"], "pids": state["pids"], "ports": state["ports"]})}, indent=2))
        return 0
    state = topology.up()
    home = Path(state["env"]["AIRFLOW_HOME"])
    print(f"Airflow UI: {state['ui']} (user admin, password in {home / 'passwords.json'})")
    print(f"Processes: {', '.join(f'{k}={v}' for k, v in state['pids'].items())}")
    print(f"Logs: {topology.log_dir}; task logs: {home / 'logs'}")
    print("The DAGs start paused: `airflow dags unpause ssp_revenue_daily` with the environment of "
          f"{topology.state_file}. Stop everything with: make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
