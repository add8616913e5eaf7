"""Report styles described in YAML (include/config/styles/): how an SSP's report is asked for and read.

A description says how to authenticate (request headers carrying the Connection's
login or password), how to request a day (method, URL template, parameters, the
answer that means "not ready yet"), what the body is (CSV: encoding, delimiter,
header row, totals row) and how each column maps to the canonical schema, with
its number format (thousands separators, decimal comma; whole units, exact
decimals or micros) and consumption tax. The connector (``ingest.connectors.declarative``)
reads reports by it and the emulator serves them from it, so a new SSP of a
known shape is a file, not code. What a description cannot say (OAuth2 tokens,
asynchronous jobs, signed URLs, hourly re-bucketing) stays in the Python styles.

A bad description is refused with its file and line, like the allocation rules.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from pathlib import Path
from typing import Any

import yaml

from ssp_revenue.core import yaml_text

# The canonical columns a report column may feed (ssp, tz_policy and lineage come from the pipeline).
DIMENSIONS = ("media", "ad_unit", "country", "device")
TARGETS = ("revenue_date", "hour", *DIMENSIONS, "impressions", "clicks", "revenue", "currency")
REQUIRED_TARGETS = (*DIMENSIONS, "impressions", "clicks", "revenue")
TYPES = {"revenue_date": "date", "hour": "instant", "impressions": "integer", "clicks": "integer",
         "revenue": "money"}
TOTALS = ("rows", "impressions", "clicks", "revenue")
NUMBER_FORMATS = ("plain", "thousands", "decimal_comma", "thousands_decimal_comma")
MONEY_UNITS = ("whole", "decimal", "micros")
# {date}: the revenue date; {start} and {end}: its business day as UTC instants (end exclusive).
PLACEHOLDERS = {"ssp", "date", "start", "end"}
STYLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class StyleError(ValueError):
    """A report-style description that cannot be used, located to its file and line."""


@dataclasses.dataclass(frozen=True)
class Tax:
    """Amounts include consumption tax at ``rate`` when the SSP's entry sets option ``when``."""

    rate: decimal.Decimal
    when: str


@dataclasses.dataclass(frozen=True)
class Column:
    name: str  # the header in the report
    to: str  # the canonical column it feeds
    number_format: str = "plain"
    unit: str = "whole"  # money only: whole units, an exact decimal, or micros
    format: str = "%Y-%m-%d"  # dates only (strptime)
    tax: Tax | None = None

    @property
    def kind(self) -> str:
        return TYPES.get(self.to, "text")


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str  # relative to the Connection's base_url; {ssp} and {date} filled in
    params: dict[str, str]
    not_ready_status: int
    not_ready_code: str | None = None  # the JSON error code that, with the status, means "not ready"
    next_field: str | None = None  # pages: the field of a page that holds the next page's cursor
    cursor_param: str | None = None  # ... and the parameter that sends it back
    size_param: str | None = None  # the parameter that carries the page size (a connector may lower it)


@dataclasses.dataclass(frozen=True)
class ReportStyle:
    name: str
    description: str
    headers: dict[str, str]  # request header -> "login" | "password"
    request: Request
    encoding: str
    delimiter: str
    totals_label: str | None
    content_type: str
    extension: str
    columns: tuple[Column, ...]
    path: Path
    body_format: str = "csv"
    rows_field: str = "data"  # json: where a page's rows are
    totals_field: str | None = None  # json: where the first page states its totals
    totals_names: dict[str, str] = dataclasses.field(default_factory=dict)  # rows/impressions/... -> field
    hourly: bool = False  # rows are hours: summed into business dates by their UTC instant

    @property
    def expected_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, target: str) -> Column | None:
        return next((c for c in self.columns if c.to == target), None)


class _Lines:
    """The line of every key and list item of a YAML document, by its path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[tuple[Any, ...], int] = {}

    def load(self, text: str) -> Any:
        try:
            node = yaml_text.compose(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            raise StyleError(f"{self.path}:{line}: not YAML ({getattr(exc, 'problem', exc)})") from None
        return None if node is None else self._value(node, ())

    def _value(self, node: yaml.Node, where: tuple[Any, ...]) -> Any:
        self.lines[where] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key, value in node.value:
                out[str(key.value)] = self._value(value, (*where, str(key.value)))
                self.lines[(*where, str(key.value))] = key.start_mark.line + 1  # the key's line wins
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._value(item, (*where, i)) for i, item in enumerate(node.value)]
        return yaml_text.load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value

    def error(self, where: tuple[Any, ...], message: str) -> StyleError:
        probe = where
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        dotted = ".".join(str(p) for p in where) or "(top)"
        return StyleError(f"{self.path}:{line}: {dotted}: {message}")


def _mapping(doc: _Lines, value: Any, where: tuple[Any, ...], allowed: set[str],
             required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise doc.error(where, "expected a mapping")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise doc.error((*where, unknown[0]), f"unknown key {unknown[0]!r}; known: {sorted(allowed)}")
    missing = sorted(required - set(value))
    if missing:
        raise doc.error(where, f"missing {missing}")
    return value


def _text(doc: _Lines, value: Any, where: tuple[Any, ...]) -> str:
    if not isinstance(value, str) or not value:
        raise doc.error(where, f"expected text, got {value!r}")
    return value


def _template(doc: _Lines, text: str, where: tuple[Any, ...]) -> str:
    for field in re.findall(r"{([^}]*)}", text):
        if field not in PLACEHOLDERS:
            raise doc.error(where, f"unknown placeholder {{{field}}}; known: {sorted(PLACEHOLDERS)}")
    return text


def _column(doc: _Lines, value: Any, where: tuple[Any, ...]) -> Column:
    entry = _mapping(doc, value, where, {"name", "to", "number_format", "unit", "format", "tax"},
                     {"name", "to"})
    to = _text(doc, entry["to"], (*where, "to"))
    if to not in TARGETS:
        raise doc.error((*where, "to"), f"{to!r} is not a canonical column; known: {list(TARGETS)}")
    kind = TYPES.get(to, "text")
    number_format = entry.get("number_format", "plain")
    if "number_format" in entry and kind not in ("integer", "money"):
        raise doc.error((*where, "number_format"), f"only numbers have a number format, {to!r} is {kind}")
    if number_format not in NUMBER_FORMATS:
        raise doc.error((*where, "number_format"), f"{number_format!r} is not one of {list(NUMBER_FORMATS)}")
    unit = entry.get("unit", "whole")
    if "unit" in entry and kind != "money":
        raise doc.error((*where, "unit"), f"only money has a unit, {to!r} is {kind}")
    if unit not in MONEY_UNITS:
        raise doc.error((*where, "unit"), f"{unit!r} is not one of {list(MONEY_UNITS)}")
    if "format" in entry and kind not in ("date", "instant"):
        raise doc.error((*where, "format"), f"only a date or an hour has a format, {to!r} is {kind}")
    date_format = _text(doc, entry.get("format", "%Y-%m-%dT%H:%M:%SZ" if kind == "instant" else "%Y-%m-%d"),
                        (*where, "format"))
    tax = None
    if "tax" in entry:
        if kind != "money":
            raise doc.error((*where, "tax"), "only money includes tax")
        spec = _mapping(doc, entry["tax"], (*where, "tax"), {"rate", "when"}, {"rate", "when"})
        try:
            rate = decimal.Decimal(str(spec["rate"]))
        except decimal.InvalidOperation:
            raise doc.error((*where, "tax", "rate"), f"{spec['rate']!r} is not a decimal rate") from None
        if not decimal.Decimal(0) < rate < decimal.Decimal(1):
            raise doc.error((*where, "tax", "rate"), f"a tax rate is a fraction (0.10 for 10 %), got {rate}")
        tax = Tax(rate, _text(doc, spec["when"], (*where, "tax", "when")))
    return Column(name=_text(doc, entry["name"], (*where, "name")), to=to, number_format=number_format,
                  unit=unit, format=date_format, tax=tax)


def parse_style(path: Path, text: str | None = None) -> ReportStyle:
    """Read and check one description.

    Raises:
        StyleError: anything that cannot be used, with its file and line.
    """
    doc = _Lines(path)
    data = doc.load(path.read_text(encoding="utf-8") if text is None else text)
    name = path.name.removesuffix(".yaml")
    if not STYLE_NAME.match(name):
        raise StyleError(f"{path}:1: a style file is named <style>.yaml, the style matching "
                         f"{STYLE_NAME.pattern}")
    top = _mapping(doc, data, (), {"description", "auth", "request", "body", "columns"},
                   {"auth", "request", "body", "columns"})
    auth = _mapping(doc, top["auth"], ("auth",), {"headers"}, {"headers"})
    given_headers = auth["headers"] or {}
    headers = _mapping(doc, given_headers, ("auth", "headers"),
                       set(given_headers) if isinstance(given_headers, dict) else set(), set())
    for header, field in headers.items():
        if field not in ("login", "password"):
            raise doc.error(("auth", "headers", header),
                            f"a header carries the Connection's login or password, not {field!r}")
    if not headers:
        raise doc.error(("auth", "headers"), "at least one header authenticates the request")
    req = _mapping(doc, top["request"], ("request",), {"method", "path", "params", "not_ready", "pages"},
                   {"path"})
    method = req.get("method", "GET")
    if method not in ("GET", "POST"):
        raise doc.error(("request", "method"), f"{method!r} is not GET or POST")
    given = req.get("params") or {}
    params = _mapping(doc, given, ("request", "params"),
                      set(given) if isinstance(given, dict) else set(), set())
    not_ready = _mapping(doc, req.get("not_ready") or {"status": 404}, ("request", "not_ready"),
                         {"status", "code"}, {"status"})
    pages = _mapping(doc, req.get("pages") or {}, ("request", "pages"), {"next", "param", "size_param"},
                     set())
    if pages and not {"next", "param"} <= set(pages):
        raise doc.error(("request", "pages"), "pages need both 'next' (the page's cursor field) and 'param'")
    if not isinstance(not_ready["status"], int) or not 400 <= not_ready["status"] < 500:
        raise doc.error(("request", "not_ready", "status"), "a 4xx status code")
    request = Request(method=method, path=_template(doc, _text(doc, req["path"], ("request", "path")),
                                                    ("request", "path")),
                      params={k: _template(doc, str(v), ("request", "params", k)) for k, v in params.items()},
                      not_ready_status=not_ready["status"],
                      not_ready_code=str(not_ready["code"]) if "code" in not_ready else None,
                      next_field=pages.get("next"), cursor_param=pages.get("param"),
                      size_param=pages.get("size_param"))
    body = _mapping(doc, top["body"], ("body",),
                    {"format", "encoding", "delimiter", "header_row", "totals_row", "content_type", "rows",
                     "totals"}, {"format"})
    if body["format"] not in ("csv", "json"):
        raise doc.error(("body", "format"), f"{body['format']!r}: a described body is csv or json")
    json_body = body["format"] == "json"
    for key in ("rows", "totals") if not json_body else ("delimiter", "totals_row"):
        if key in body:
            raise doc.error(("body", key), f"a {body['format']} body has no {key!r}")
    totals_names: dict[str, str] = {}
    if json_body and "totals" in body:
        stated = _mapping(doc, body["totals"], ("body", "totals"), {"at", *TOTALS}, {"at", *TOTALS})
        totals_names = {k: _text(doc, stated[k], ("body", "totals", k)) for k in TOTALS}
    if not json_body and body.get("header_row", True) is not True:
        raise doc.error(("body", "header_row"), "a described CSV has a header row (the columns are named)")
    encoding = _text(doc, body.get("encoding", "utf-8"), ("body", "encoding"))
    try:
        "".encode(encoding)
    except LookupError:
        raise doc.error(("body", "encoding"), f"unknown encoding {encoding!r}") from None
    delimiter = _text(doc, body.get("delimiter", ","), ("body", "delimiter"))
    if len(delimiter) != 1:
        raise doc.error(("body", "delimiter"), "one character")
    totals_label = None
    if "totals_row" in body:
        totals = _mapping(doc, body["totals_row"], ("body", "totals_row"), {"label"}, {"label"})
        totals_label = _text(doc, totals["label"], ("body", "totals_row", "label"))
    if not isinstance(top["columns"], list) or not top["columns"]:
        raise doc.error(("columns",), "a list of the report's columns")
    columns = tuple(_column(doc, c, ("columns", i)) for i, c in enumerate(top["columns"]))
    seen: dict[str, int] = {}
    for i, column in enumerate(columns):
        if column.to in seen:
            raise doc.error(("columns", i, "to"),
                            f"{column.to!r} is fed by columns {seen[column.to]} and {i}")
        seen[column.to] = i
    missing = [t for t in REQUIRED_TARGETS if t not in seen]
    if ("revenue_date" in seen) == ("hour" in seen):
        missing.append("revenue_date or hour (one of them)")
    if missing:
        raise doc.error(("columns",), f"no column feeds {missing}")
    if len({c.name for c in columns}) != len(columns):
        raise doc.error(("columns",), "two columns have the same name")
    return ReportStyle(
        name=name, description=str(top.get("description", "")), headers=dict(headers), request=request,
        encoding=encoding, delimiter=delimiter, totals_label=totals_label,
        content_type=str(body.get("content_type", "application/json" if json_body
                                  else f"text/csv; charset={encoding}")),
        extension="json.gz" if json_body else "csv", columns=columns, path=path,
        body_format=body["format"], rows_field=str(body.get("rows", "data")),
        totals_field=str(body["totals"]["at"]) if totals_names else None, totals_names=totals_names,
        hourly="hour" in seen,
    )


def styles_dir() -> Path:
    """Where the described styles live: ``include/config/styles`` beside the registry."""
    return Path(__file__).resolve().parents[2] / "config" / "styles"


_LOADED: dict[Path, ReportStyle] = {}


def load_style(name: str, directory: Path | None = None) -> ReportStyle | None:
    """The described style ``name``, or None when no description of it exists (read once per process).

    Raises:
        StyleError: its description is invalid.
    """
    path = (directory or styles_dir()) / f"{name}.yaml"
    if path not in _LOADED:
        if not path.exists():
            return None
        _LOADED[path] = parse_style(path)
    return _LOADED[path]


def described_styles(directory: Path | None = None) -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in (directory or styles_dir()).glob("*.yaml"))
