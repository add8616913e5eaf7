"""The library's layout rules, checked from its source: what may import what."""

from __future__ import annotations

import ast
import shutil
import zipfile
from pathlib import Path

import pytest
from setuptools import build_meta

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "include" / "ssp_revenue"
EMULATOR = ROOT / "include" / "ssp_emulator"
# The data's path: a stage may import its own modules and the stages before it, never after.
STAGES = ["core", "ingest", "lake", "finalize", "allocate", "operate"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "include").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every module a file imports (``from a import b`` counts as a and a.b)."""
    tree = ast.parse(path.read_text())
    nodes: list[ast.AST]
    if top_level_only:  # what runs at import time: not in functions, not under TYPE_CHECKING
        nodes = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def test_the_library_never_imports_airflow_or_the_emulator() -> None:
    offenders = {
        (module_name(path), name)
        for path in library_files()
        for name in imports(path)
        if name.split(".")[0] in {"airflow", "ssp_emulator", "flask", "moto"}
    }
    assert offenders == set()


def test_stages_import_one_way_along_the_data_path() -> None:
    backwards = set()
    for path in library_files():
        parts = path.relative_to(LIBRARY).parts
        if len(parts) < 2:
            continue
        stage = STAGES.index(parts[0])
        for name in imports(path):
            target = name.split(".")
            if target[0] == "ssp_revenue" and len(target) > 1 and target[1] in STAGES \
                    and STAGES.index(target[1]) > stage:
                backwards.add((module_name(path), name))
    assert backwards == set()


def test_no_import_cycles_between_modules() -> None:
    known = {module_name(path) for path in library_files()}
    graph = {module_name(path): {n for n in imports(path, top_level_only=True) if n in known}
             for path in library_files()}
    for name in graph:  # a package's own __init__ is not an edge back to its modules
        graph[name].discard(name)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_top_level_reads_as_a_few_stages() -> None:
    entries = sorted(p.name for p in LIBRARY.iterdir() if p.name not in {"__pycache__", "py.typed"})
    assert entries == ["__init__.py", *sorted(STAGES)]
    for stage in STAGES:
        modules = [p for p in (LIBRARY / stage).glob("*.py") if p.name != "__init__.py"]
        assert 1 <= len(modules) <= 20, stage  # operate holds 17: the next cut merges outcomes, alerts, events


def test_the_emulator_uses_only_the_library_core() -> None:
    used = {name for path in EMULATOR.rglob("*.py") for name in imports(path)
            if name.startswith("ssp_revenue")}
    assert used, "the emulator shares the library's clock parsing"
    assert {name for name in used if not name.startswith("ssp_revenue.core")} == set()


@pytest.fixture(scope="module")
def production_wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel a production worker installs, built from a copy so the checkout is not touched."""
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "requirements", src / "requirements")
    for package in ("ssp_revenue", "ssp_emulator"):
        shutil.copytree(ROOT / "include" / package, src / "include" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    import os

    cwd = os.getcwd()
    os.chdir(src)
    try:
        name = build_meta.build_wheel(str(out))
    finally:
        os.chdir(cwd)
    return zipfile.ZipFile(out / name)


def test_the_production_wheel_carries_neither_the_emulator_nor_moto_or_flask(
        production_wheel: zipfile.ZipFile) -> None:
    files = production_wheel.namelist()
    assert any(f.startswith("ssp_revenue/lake/") for f in files)
    assert not [f for f in files if f.startswith("ssp_emulator/")]
    metadata = next(f for f in files if f.endswith(".dist-info/METADATA"))
    requires = [line.split(":", 1)[1].strip() for line in production_wheel.read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    demo = [r for r in requires if 'extra == "demo"' in r]
    assert any(r.startswith("apache-airflow==") for r in runtime)
    assert not [r for r in runtime if r.lower().split("[")[0].split("=")[0] in {"moto", "flask", "werkzeug"}]
    assert {r.lower().split("[")[0].split("=")[0] for r in demo} == {"moto", "flask", "werkzeug"}
