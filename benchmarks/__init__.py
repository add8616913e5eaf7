"""Side-by-side benchmarks, run by hand with ``make bench`` (never in CI)."""
