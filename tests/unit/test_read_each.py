"""store.read_each: many small reads side by side, results in the items' order."""

from __future__ import annotations

import threading

import pytest

from ssp_revenue.lake import store


def test_reads_overlap_and_come_back_in_the_items_order() -> None:
    # Every read waits for the others: only reads in flight together get past the barrier.
    together = threading.Barrier(4, timeout=10)

    def read(item: int) -> str:
        together.wait()
        return f"read {item}"

    assert store.read_each(read, [3, 1, 2, 0]) == ["read 3", "read 1", "read 2", "read 0"]


def test_a_failed_read_raises_in_the_caller() -> None:
    def read(item: str) -> str:
        if item == "missing":
            raise KeyError(item)
        return item

    with pytest.raises(KeyError, match="missing"):
        store.read_each(read, ["a", "missing", "b"])


def test_none_or_one_item_reads_in_the_calling_thread() -> None:
    caller = threading.get_ident()
    assert store.read_each(lambda item: threading.get_ident(), ["only"]) == [caller]
    assert store.read_each(lambda item: item, []) == []
