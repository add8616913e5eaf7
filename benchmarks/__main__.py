"""``make bench``: run every benchmark and write its table under benchmarks/results/."""

from __future__ import annotations

import argparse
import sys

from benchmarks import pipeline_day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    pipeline_day.main(rows=args.rows, runs=args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
