"""Static checks of the deployment: compose file, IAM policies, partition-value guard."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ssp_revenue.lake import store

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$", re.I)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose_spec.json").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in
              jsonschema.Draft7Validator(schema).iter_errors(COMPOSE)]
    assert errors == []


def test_airflow_is_laid_out_as_its_docs_do() -> None:
    commands = {name: svc.get("command") for name, svc in SERVICES.items()}
    assert commands["airflow-apiserver"] == ["api-server"]
    assert commands["airflow-scheduler"] == ["scheduler", "--skip-serve-logs"]
    assert commands["airflow-dag-processor"] == ["dag-processor"]
    assert commands["airflow-triggerer"] == ["triggerer", "--skip-serve-logs"]
    assert commands["airflow-worker"] == ["celery", "worker", "--skip-serve-logs"]
    assert "airflow db migrate" in "".join(commands["airflow-init"])
    env = {**shared_settings(), **SERVICES["airflow-worker"]["environment"]}
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert SERVICES["ssp-emulator"]["profiles"] == ["emulator"]
    assert SERVICES["local-aws"]["profiles"] == ["local-aws"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_is_pinned_and_has_a_healthcheck(name: str) -> None:
    service = SERVICES[name]
    image = service["image"]
    tag = image.rsplit(":", 1)[-1] if ":" in image else ""
    assert tag and tag != "latest" and re.search(r"\d", tag), image
    assert service.get("healthcheck", {}).get("test"), name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_inline_secrets(name: str) -> None:
    env = SERVICES[name].get("environment", {})
    for key, value in env.items():
        text = str(value)
        if SECRET_NAME.search(key):
            assert text.startswith("${"), f"{name}.{key} must come from .env"
        for match in re.finditer(r"://([^:@/]+):([^@/]+)@", text):
            assert match.group(2).startswith("${"), f"{name}.{key} has an inline password"


def test_secrets_come_from_an_ignored_env_file_with_an_example() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    for var in ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert f"{var}=" in example
    from ssp_revenue.core import registry

    for config in registry.load_registry(ROOT / "include" / "config" / "ssps.yaml"):
        assert f"AIRFLOW_CONN_{config.connection_id.upper()}=" in example, config.name
    airflow_services = [s for s in SERVICES.values() if s.get("image", "").startswith("ssp-revenue")]
    assert airflow_services and all(s["env_file"] == ["airflow.env", ".env"] for s in airflow_services)
    assert SERVICES["postgres"]["env_file"] == [".env"]


def shared_settings() -> dict[str, str]:
    from ssp_revenue_airflow.topology import shared_environment

    return shared_environment(ROOT / "airflow.env")


def test_compose_and_the_tested_topology_share_one_airflow_environment() -> None:
    """Compose may add addresses and secrets, never restate (and so drift from) airflow.env."""
    shared = shared_settings()
    for name, service in SERVICES.items():
        overlap = set(service.get("environment") or {}) & set(shared)
        assert not overlap, f"{name} restates {overlap}: change airflow.env instead"
    assert shared["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert "8974" in " ".join(SERVICES["airflow-scheduler"]["healthcheck"]["test"])
    for name in ("airflow-scheduler", "airflow-triggerer", "airflow-worker"):
        assert "--skip-serve-logs" in SERVICES[name]["command"], name


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_command_exists(name: str) -> None:
    service = SERVICES[name]
    entry = service.get("entrypoint")
    command = service.get("command")
    image = service["image"]
    if image.startswith(("postgres", "redis")):
        return  # the image's own entrypoint
    if entry == ["/bin/bash", "-c"]:
        for line in "".join(command).split("&&"):
            words = line.split()
            if words and words[0] == "airflow":
                assert_airflow_command(words[1:])
        return
    if entry and entry[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(entry[2]) is not None
        return
    if entry:
        assert shutil.which(entry[0], path=str(Path(__import__("sys").executable).parent)), entry
        return
    assert_airflow_command(command)


def assert_airflow_command(words: list[str]) -> None:
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    try:
        parser.parse_args([*words, "--help"])
    except SystemExit as exit_:
        assert exit_.code == 0, words


def test_emulator_and_local_aws_share_the_workers_loopback() -> None:
    for name in ("ssp-emulator", "local-aws"):
        assert SERVICES[name]["network_mode"] == "service:airflow-worker"
        assert "127.0.0.1" in " ".join(SERVICES[name]["command"]) or name == "ssp-emulator"
    assert all(p.startswith("127.0.0.1:") for s in SERVICES.values() for p in s.get("ports", []))


# -- IAM ---------------------------------------------------------------------------

POLICIES = ROOT / "include" / "iam"
# What each boto3 call the library makes needs (Glue paginators included).
CALL_ACTIONS = {
    # upload_file: a multipart upload, all PutObject; a failed one is aborted by s3transfer or,
    # failing that, by the lifecycle rule AbortIncompleteMultipartUpload (include/aws/s3-lifecycle.json).
    "s3": {"put_object": "s3:PutObject", "upload_file": "s3:PutObject", "get_object": "s3:GetObject", "head_object": "s3:GetObject",
           "list_objects_v2": "s3:ListBucket", "head_bucket": "s3:ListBucket",
           "delete_objects": "s3:DeleteObject", "put_object_tagging": "s3:PutObjectTagging"},
    "glue": {"get_database": "glue:GetDatabase", "get_table": "glue:GetTable", "get_tables": "glue:GetTables",
             "get_partition": "glue:GetPartition", "get_partitions": "glue:GetPartitions",
             "create_partition": "glue:CreatePartition", "update_partition": "glue:UpdatePartition"},
}
# Made only when the resource is missing (the local stack); production creates them once.
SETUP_CALLS = {"create_bucket", "create_database", "create_table", "update_table"}
# Vacuum runs as its own role (lake_janitor.json), the only one that may delete.
JANITOR_MODULES = {"vacuum.py"}


def library_calls(janitor: bool = False) -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "include" / "ssp_revenue").rglob("*.py")
                       if "emulator" not in p.parts and (p.name in JANITOR_MODULES) == janitor)
    direct = set(re.findall(r"\b(?:s3|glue)\.([a-z_]+)\(", source))
    paginated = set(re.findall(r'get_paginator\("([a-z_0-9]+)"\)', source))
    return (direct - {"get_paginator"}) | paginated


def actions(policy: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for statement in policy["Statement"]:
        acts = statement["Action"]
        out.update([acts] if isinstance(acts, str) else acts)
    return out


def test_worker_policy_grants_exactly_what_the_code_calls() -> None:
    policy = json.loads((POLICIES / "airflow_worker.json").read_text())
    needed = set()
    for call in library_calls() - SETUP_CALLS:
        found = [table[call] for table in CALL_ACTIONS.values() if call in table]
        assert found, f"library calls {call}: add it to CALL_ACTIONS and the worker policy"
        needed.update(found)
    assert actions(policy) == needed


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.json")), ids=lambda p: p.stem)
def test_no_wildcard_actions_or_resources(path: Path) -> None:
    policy = json.loads(path.read_text())
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in actions({"Statement": [statement]}):
            assert "*" not in action, action
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            assert resource != "*" and not resource.endswith(":*"), resource
            assert "ssp-revenue" in resource or "ssp_revenue" in resource or resource.endswith(":catalog"), resource


def test_worker_may_read_and_write_every_prefix_the_pipeline_writes() -> None:
    policy = json.loads((POLICIES / "airflow_worker.json").read_text())
    granted = {r.split(":::ssp-revenue/")[1].split("/")[0] for s in policy["Statement"]
               if "s3:PutObject" in actions({"Statement": [s]}) for r in s["Resource"]}
    # raw reports, quarantine, tables, the ledger, notices, month closes, incident state, statements
    written = {"raw", "quarantine", "tables", "ledger", "alerts", "closes", "incidents", "statements"}
    assert written <= granted, written - granted


def test_worker_may_not_delete_anything() -> None:
    policy = json.loads((POLICIES / "airflow_worker.json").read_text())
    assert not [a for a in actions(policy) if "Delete" in a]


def test_the_janitor_may_delete_only_what_vacuum_removes_and_reads_what_protects_it() -> None:
    policy = json.loads((POLICIES / "lake_janitor.json").read_text())
    calls = library_calls(janitor=True)
    assert {"delete_objects", "put_object_tagging"} <= calls
    granted = actions(policy)
    for call in calls:
        assert any(table.get(call) in granted for table in CALL_ACTIONS.values()), call
    deleting = [s for s in policy["Statement"] if "s3:DeleteObject" in actions({"Statement": [s]})]
    resources = {r for s in deleting for r in s["Resource"]}
    assert resources == {f"arn:aws:s3:::ssp-revenue/tables/{t}/*" for t in
                         ("revenue", "publish_log", "fetch_log", "pipeline_events", "incidents")}
    assert not [a for a in granted if a.startswith("glue:") and not a.startswith("glue:Get")]


def test_the_lifecycle_never_expires_raw_reports_the_ledger_or_a_close() -> None:
    rules = json.loads((ROOT / "include" / "aws" / "s3-lifecycle.json").read_text())["Rules"]
    for rule in rules:
        if "Expiration" in rule:
            assert rule["Filter"] == {"Tag": {"Key": "ssp-revenue-vacuum", "Value": "expired"}}, rule["ID"]
        if "NoncurrentVersionExpiration" in rule:
            assert rule["Filter"]["Prefix"] == "tables/", rule["ID"]
    raw = [r for r in rules if r["Filter"].get("Prefix") == "raw/"]
    assert raw and all("Expiration" not in r for r in raw)


# -- partition values that reach S3 keys, Glue and DDL ------------------------------

@pytest.mark.parametrize("hostile", [
    "adpulse'; DROP TABLE revenue; --", 'a"b', "a;b", "../ledger", "..", "a/b", "a b", "",
    "\u0430dpulse",  # Cyrillic a
    "\uff41\uff44\uff50\uff55\uff4c\uff53\uff45",  # fullwidth "adpulse"
    "adpulse\n", "adpulse\u200b", "a" * 200, "adp%2e%2e", "x=y",
])
def test_hostile_partition_values_are_refused(hostile: str) -> None:
    with pytest.raises(ValueError):
        store.partition_value(hostile)


@pytest.mark.parametrize("fine", ["adpulse", "ssp_2", "2026-11-05", "abc.def"])
def test_ordinary_values_pass(fine: str) -> None:
    assert store.partition_value(fine) == fine
