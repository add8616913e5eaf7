"""Shared pieces: the local stack, timing, and the results table."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(into: dict[str, list[float]], name: str) -> Iterator[None]:
    import time

    started = time.perf_counter()
    yield
    into.setdefault(name, []).append(time.perf_counter() - started)


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_table(name: str, title: str, header: list[str], rows: list[list[str]], notes: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        f"{dt.date.today().isoformat()}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", notes, ""]
    text = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)
    return text
