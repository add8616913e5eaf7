"""YAML read with libyaml, PyYAML's C parser, where the installed wheel has it.

Every task process reads the SSP registry and the report styles again (the DAG
file's parse, the task body): with the pure-Python parser that was ~35 ms a task;
libyaml reads the same documents into the same values, with the same line marks,
about eight times faster.
"""

from __future__ import annotations

from typing import Any

import yaml

LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """The document's value, as ``yaml.safe_load`` reads it."""
    # LOADER is CSafeLoader or SafeLoader: safe either way.
    return yaml.load(text, Loader=LOADER)  # noqa: S506  # nosec B506


def compose(text: str) -> yaml.Node | None:
    """The document's node tree, each node with its line mark, as ``yaml.compose`` gives it."""
    return yaml.compose(text, Loader=LOADER)
