"""The lake as it stood at a past instant, in SQL that Athena and the local engine both run.

Every version is immutable and every switch is a publish_log row, so the past
is a query, not a copy:

* ``revenue`` at T: for each (date, SSP), the version of the last ``published``
  publish_log row with ``published_at <= T``, read from ``revenue_history``
  (every version prefix, partition projection, nothing registered per version);
* ``revenue_final`` and the append-only tables: the rows written by T (each
  table's own timestamp column; compaction keeps every row, so it changes no
  past answer);
* ``allocation_final``: the dates frozen by T. An allocation recomputed after T
  shows its current split (``allocation_changes`` as of T says what changed);
  the split itself is not versioned;
* ``statements``: the statements landed by T (``is_current`` says which is in
  force now); ``statement_reconciliation`` and ``allocation_trueup``: the
  month's result in force now, if it was reconciled by T (a month reconciled
  again since shows none as of T; the earlier result's files stay under their
  own prefix).

A query is rewritten by prefixing one CTE per table it reads (views inlined),
named like the table, so the user's SQL is unchanged. The past reaches back as
far as vacuum keeps superseded versions (``SSP_REVENUE_READER_GRACE_DAYS``); the
local engine refuses an instant whose versions were vacuumed, naming them, rather
than answer without them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

import sqlglot
from sqlglot import exp

from ssp_revenue.lake import logs

HISTORY = "revenue_history"
WRITTEN_AT = {**logs.WRITTEN_AT, "revenue_final": "finalized_at", "allocation_changes": "recomputed_at",
              "statements": "fetched_at", "statement_reconciliation": "reconciled_at"}


# The as-of form of each kind of table. Placeholders (``__name``) become the stored
# table, the timestamp column and the instant through sqlglot, never by string formatting.
_LIVE_VERSIONS = ("SELECT revenue_date, ssp, max_by(version, published_at) AS version FROM __publish_log "
                  "WHERE table_name = 'revenue' AND outcome = 'published' AND published_at <= __at "
                  "GROUP BY revenue_date, ssp")
_TEMPLATES = {
    "revenue": ("SELECT h.* FROM __revenue_history AS h JOIN __live_versions AS v "
                "ON h.revenue_date = v.revenue_date AND h.ssp = v.ssp AND h.source_version = v.version"),
    "allocation_final": ("SELECT a.* FROM __allocation_final AS a WHERE EXISTS (SELECT 1 FROM "
                         "__revenue_final AS f WHERE f.revenue_date = a.revenue_date AND f.ssp = a.ssp "
                         "AND f.finalized_at <= __at)"),
    "written": "SELECT * FROM __table WHERE __written_at <= __at",
    HISTORY: "SELECT * FROM __revenue_history",
    "allocation_trueup": ("SELECT t.* FROM __allocation_trueup AS t WHERE EXISTS (SELECT 1 FROM "
                          "__statement_reconciliation AS r WHERE r.revenue_date = t.revenue_date "
                          "AND r.ssp = t.ssp AND r.reconciled_at <= __at)"),
}


def literal(instant: dt.datetime) -> exp.Expression:
    """The instant as an Athena timestamp in UTC (the lake's timestamps are UTC)."""
    if instant.tzinfo is None:
        raise ValueError(f"--as-of needs an instant with a zone or offset, got {instant.isoformat()}")
    text = instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("timestamp"))


def _fill(template: str, instant: dt.datetime, source: Callable[[str], str], table: str = "") -> str:
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name == "__live_versions":
            live = sqlglot.parse_one(_fill(_LIVE_VERSIONS, instant, source), read="athena")
            return exp.Subquery(this=live, alias=exp.TableAlias(this=exp.to_identifier(node.alias)))
        if isinstance(node, exp.Table) and node.name.startswith("__"):
            name = table if node.name == "__table" else node.name[2:]
            return exp.to_table(source(name), alias=node.alias or None)
        if isinstance(node, exp.Column) and node.name == "__at":
            return literal(instant)
        if isinstance(node, exp.Column) and node.name == "__written_at":
            return exp.column(WRITTEN_AT[table])
        return node

    return sqlglot.parse_one(template, read="athena").transform(swap).sql(dialect="athena")


def table_at(table: str, instant: dt.datetime, source: Callable[[str], str]) -> str:
    """A SELECT of ``table`` as it stood at ``instant``; ``source`` names the stored tables."""
    if table in _TEMPLATES:
        return _fill(_TEMPLATES[table], instant, source)
    if table in WRITTEN_AT:
        return _fill(_TEMPLATES["written"], instant, source, table)
    raise ValueError(f"no as-of rule for table {table!r}")


def live_versions_at(instant: dt.datetime, source: Callable[[str], str]) -> str:
    """(revenue_date, ssp, version) live at ``instant``: what ``revenue`` at it must find."""
    return _fill(_LIVE_VERSIONS, instant, source)


def stored_tables(tables: list[str]) -> list[str]:
    """The stored tables the as-of forms of ``tables`` read."""
    needed = set(tables) - {"revenue"}
    if "revenue" in tables:
        needed |= {HISTORY, "publish_log"}
    if "allocation_final" in tables:
        needed.add("revenue_final")
    if "allocation_trueup" in tables:
        needed.add("statement_reconciliation")
    return sorted(needed)


def rewrite(sql: str, instant: dt.datetime, *, tables: list[str], views: Mapping[str, str],
            source: Callable[[str], str]) -> str:
    """``sql`` (Athena dialect) with every table it reads, and every view, as of ``instant``."""
    used_views = [name for name in views if name in _names(sql, views)]
    local = set(tables) | set(used_views)
    tree = sqlglot.parse_one(_unqualified(sql, local), read="athena")
    ctes = [(t, table_at(t, instant, source)) for t in tables]
    ctes += [(v, _unqualified(views[v], local)) for v in _view_order(used_views, views)]
    existing = tree.args.get("with")
    prefix = ", ".join(f"{name} AS ({body})" for name, body in ctes)
    if existing is not None:
        tree.set("with", None)
        inner = existing.sql(dialect="athena").removeprefix("WITH ")
        return f"WITH {prefix}, {inner} {tree.sql(dialect='athena')}"
    return f"WITH {prefix} {tree.sql(dialect='athena')}"


def _unqualified(sql: str, names: set[str]) -> str:
    """A view body reading the CTEs, not the tables its qualified names would reach."""
    def strip(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name in names:
            return exp.to_table(node.name, alias=node.alias or None)
        return node

    return sqlglot.parse_one(sql, read="athena").transform(strip).sql(dialect="athena")


def _names(sql: str, views: Mapping[str, str]) -> set[str]:
    names = {t.name for t in sqlglot.parse_one(sql, read="athena").find_all(exp.Table)}
    for name in list(names):
        if name in views:
            names |= _names(views[name], views)
    return names


def _view_order(used: list[str], views: Mapping[str, str]) -> list[str]:
    """Views after the views they read, so each CTE sees the ones it needs."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependency in sorted(_names(views[name], views) & set(views)):
            if dependency != name:
                visit(dependency)
        ordered.append(name)

    for name in sorted(used):
        visit(name)
    return ordered
