"""The backfill benchmark's CPU accounting counts each process once, in the tree it ran in."""

from __future__ import annotations

import subprocess
import sys

from benchmarks import cpu_account

BURN = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
DONE = "print('burnt', flush=True)\ntime.sleep(5)\n"


def test_a_reaped_child_counts_in_its_tree_and_a_nested_root_only_once() -> None:
    # outer runs a child that burns 0.6 s and ends; inner (started by outer) burns 0.6 s
    # and is named as a root of its own, so it must not count in outer's tree too.
    outer = subprocess.Popen([sys.executable, "-c",
                              "import subprocess, sys, time\n"
                              f"subprocess.run([sys.executable, '-c', {BURN!r}])\n"
                              f"inner = subprocess.Popen([sys.executable, '-c', {BURN + DONE!r}],\n"
                              "                         stdout=subprocess.PIPE, text=True)\n"
                              "inner.stdout.readline()\n"  # inner has burnt its share
                              "print(inner.pid, flush=True)\n"
                              "time.sleep(5)\n"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert outer.stdout is not None
        inner = int(outer.stdout.readline())
        roots = {"outer": outer.pid, "inner": inner}
        before = cpu_account.CpuSample(0.0, {name: (0.0, 0.0) for name in roots})
        after = cpu_account.sample(roots)
        spent = cpu_account.spent(before, after)
        assert 0.5 <= spent["outer's children"] <= 1.0  # the reaped burner, not inner
        assert 0.5 <= spent["inner"] <= 1.0
        assert spent["machine, all cores"] >= spent["outer's children"] + spent["inner"]
    finally:
        subprocess.run(["pkill", "-P", str(outer.pid)], check=False)
        outer.kill()
        outer.wait()
