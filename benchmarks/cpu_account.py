"""Where a benchmark's CPU went, process tree by process tree.

On this 2-core machine the backfill is CPU-bound, and the CPU is shared by our task
processes with everything that would not be here in production: moto standing in
for S3 and Glue, the SSP emulator generating reports, PostgreSQL and Redis on the
same cores. Wall seconds cannot tell those apart; CPU seconds per process tree can.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import psutil


def _times(process: psutil.Process) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of one process."""
    t = process.cpu_times()
    return t.user + t.system, t.children_user + t.children_system


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def tree_seconds(pid: int, skip: frozenset[int] = frozenset()) -> tuple[float, float]:
    """CPU seconds of a process tree so far: the root's own, and every descendant's
    (alive now, or ended and reaped by a process of the tree) but those in ``skip``."""
    try:
        root = psutil.Process(pid)
        own, reaped = _times(root)
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    rest = reaped
    for child in _descendants(pid):
        if child.pid in skip:
            continue
        try:
            mine, theirs = _times(child)
        except psutil.NoSuchProcess:
            continue  # ended between the listing and the read: counted in its parent next time
        rest += mine + theirs
    return own, rest


def machine_busy_seconds() -> float:
    """Every core's non-idle seconds since boot."""
    t = psutil.cpu_times()
    return float(sum(t)) - float(t.idle) - float(getattr(t, "iowait", 0.0))


@dataclasses.dataclass(frozen=True)
class CpuSample:
    machine: float
    trees: dict[str, tuple[float, float]]


def sample(roots: Mapping[str, int]) -> CpuSample:
    """The machine's and each named tree's CPU seconds now, no process counted twice:
    a tree leaves out the other trees inside it (the benchmark started them all, so its
    own tree is only itself)."""
    trees = {name: frozenset([pid, *(p.pid for p in _descendants(pid))]) for name, pid in roots.items()}
    out: dict[str, tuple[float, float]] = {}
    for name, pid in roots.items():
        inner = frozenset().union(*(tree for other, tree in trees.items()
                                    if other != name and roots[other] in trees[name]))
        out[name] = tree_seconds(pid, skip=inner)
    me = psutil.Process(os.getpid())
    out["benchmark (this process)"] = (_times(me)[0], 0.0)
    return CpuSample(machine_busy_seconds(), out)


def spent(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds between two samples: per tree its root's own and its descendants'
    (as ``name`` and ``name's children``), the machine's in all, and what no tree holds."""
    out: dict[str, float] = {}
    for name, (own, rest) in after.trees.items():
        own0, rest0 = before.trees.get(name, (0.0, 0.0))
        out[name] = own - own0
        if rest - rest0 > 0.005:
            out[f"{name}'s children"] = rest - rest0
    machine = after.machine - before.machine
    out["elsewhere (not in these trees)"] = max(0.0, machine - sum(out.values()))
    out["machine, all cores"] = machine
    return out
