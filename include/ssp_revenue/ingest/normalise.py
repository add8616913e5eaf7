"""From SSP-specific rows to the canonical schema: exact money, lineage."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ssp_revenue.core import schema
from ssp_revenue.core.errors import MalformedReport, SchemaDrift

_INTEGER = re.compile(r"^-?\d+$")
# CSV text per record batch: ~250k rows of a typical report; peak memory follows this,
# not the day (benchmarks/results/streaming_day.md).
BATCH_BYTES = 16 * 1024 * 1024
HEADER_LIMIT = 1024 * 1024
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


@dataclasses.dataclass(frozen=True)
class Totals:
    rows: int
    impressions: int
    clicks: int
    revenue: decimal.Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "revenue": str(self.revenue),
        }

    @classmethod
    def zero(cls) -> Totals:
        """Nothing yet: the start of totals added up batch by batch."""
        return cls(rows=0, impressions=0, clicks=0, revenue=decimal.Decimal(0))

    def __add__(self, other: Totals) -> Totals:
        return Totals(rows=self.rows + other.rows, impressions=self.impressions + other.impressions,
                      clicks=self.clicks + other.clicks, revenue=self.revenue + other.revenue)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Totals:
        return cls(
            rows=int(data["rows"]),
            impressions=int(data["impressions"]),
            clicks=int(data["clicks"]),
            revenue=decimal.Decimal(str(data["revenue"])),
        )


def totals_of(table: pa.Table) -> Totals:
    """Exact totals of a canonical table (decimal sums, never float)."""
    revenue = pc.sum(table["revenue"].cast(pa.decimal128(38, schema.MONEY_SCALE))).as_py()
    return Totals(
        rows=table.num_rows,
        impressions=int(pc.sum(table["impressions"]).as_py() or 0),
        clicks=int(pc.sum(table["clicks"]).as_py() or 0),
        revenue=(revenue if revenue is not None else decimal.Decimal(0)).quantize(
            decimal.Decimal(1).scaleb(-schema.MONEY_SCALE)
        ),
    )


def micros_to_money(micros: pa.Array | pa.ChunkedArray) -> pa.Array:
    """int64 micros -> decimal128(18, 6), exactly: the unscaled value *is* the micros."""
    values = micros.to_numpy().astype(np.int64, copy=False)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values
    words[:, 1] = np.where(values < 0, -1, 0)  # sign extension to 128 bits
    return pa.Array.from_buffers(
        schema.MONEY, len(values), [None, pa.py_buffer(words.tobytes())]
    )


def decompress(body: bytes) -> bytes:
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise MalformedReport(f"gzip body is truncated or corrupt ({exc})") from None


def header_of(text: bytes) -> list[str]:
    first = text.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedReport(f"header is not UTF-8 ({exc})", row=0) from None
    return [cell.strip().strip('"') for cell in line.split(",")] if line else []


def check_columns(found: Sequence[str], expected: Sequence[str]) -> None:
    """A new, missing or renamed column is schema drift: caught before any row is read."""
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise SchemaDrift("report columns changed: " + ", ".join(parts), row=0)


def read_csv(
    text: bytes, column_types: Mapping[str, pa.DataType]
) -> pa.Table:
    """Strict CSV read: no empty cells, exact integer columns; errors name the data row."""
    options = _strict(column_types)
    try:
        return pacsv.read_csv(io.BytesIO(text), convert_options=options)
    except pa.ArrowInvalid as exc:
        _locate_bad_row(text, column_types)
        raise MalformedReport(f"unreadable CSV: {exc}") from None


def _strict(column_types: Mapping[str, pa.DataType]) -> pacsv.ConvertOptions:
    """No empty cell is a null, every column has its contract's type."""
    return pacsv.ConvertOptions(
        column_types=dict(column_types), null_values=[], strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def read_report_csv(text: bytes, column_types: Mapping[str, pa.DataType]) -> pa.Table:
    """A report CSV under its style's column contract: drift first, then strict rows."""
    check_columns(header_of(text), tuple(column_types))
    return read_csv(text, column_types)


def stream_report_csv(
    open_body: Callable[[], BinaryIO], column_types: Mapping[str, pa.DataType], *,
    compression: str | None = None, batch_bytes: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """:func:`read_report_csv` one record batch at a time, in file order.

    The text is cut into blocks of ``BATCH_BYTES`` at line ends and each block
    read as a CSV of its own, so exactly one block is in memory at a time
    (Arrow's own streaming reader reads ahead as fast as the input allows, and
    held most of a 10M-row day). The header is checked before any row is read.
    Anything unreadable (a bad row, a quoted field spanning a block's end) is
    located by the slow path over the body opened again and read whole: only a
    failing report is ever held whole, so its error can name the row.
    """
    size = batch_bytes or BATCH_BYTES
    options = _strict(column_types)
    with open_body() as source:
        text = cast(BinaryIO, gzip.GzipFile(fileobj=source, mode="rb")) if compression == "gzip" else source
        try:
            found = header_of(text.readline(HEADER_LIMIT))
            check_columns(found, tuple(column_types))
            header = (",".join('"' + name.replace('"', '""') + '"' for name in found) + "\n").encode()
            carry = b""
            while True:
                block = text.read(size)
                data = carry + block
                if not data:
                    return
                if block:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:  # one line longer than a block: read on
                        carry = data
                        continue
                    data, carry = data[:cut], data[cut:]
                else:
                    carry = b""
                table = pacsv.read_csv(io.BytesIO(header + data), convert_options=options)
                if table.num_rows:
                    yield table.combine_chunks().to_batches()[0]
        except _GZIP_ERRORS as exc:
            raise MalformedReport(f"gzip body is truncated or corrupt ({exc})") from None
        except pa.ArrowInvalid as exc:
            with open_body() as again:
                everything = again.read()
            if compression == "gzip":
                everything = decompress(everything)
            _locate_bad_row(everything, column_types)
            raise MalformedReport(f"unreadable CSV: {exc}") from None


def _locate_bad_row(text: bytes, column_types: Mapping[str, pa.DataType]) -> None:
    """Slow path, only after a failed read: find the first bad cell and name its row."""
    try:
        loose = pacsv.read_csv(
            io.BytesIO(text),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in column_types},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        _locate_ragged_row(text)
        raise MalformedReport(f"unreadable CSV: {exc}") from None
    for name, kind in column_types.items():
        if name not in loose.column_names:
            continue
        values = loose[name].to_pylist()
        for index, value in enumerate(values):
            if pa.types.is_integer(kind) and not _INTEGER.match(value or ""):
                raise MalformedReport(
                    f"column {name!r}: {value!r} is not an integer", row=index + 1
                )
            if pa.types.is_integer(kind) and not -(2**63) <= int(value) < 2**63:
                raise MalformedReport(
                    f"column {name!r}: {value} does not fit a 64-bit integer", row=index + 1
                )
            if pa.types.is_date32(kind):
                try:
                    dt.date.fromisoformat(value)
                except (TypeError, ValueError):
                    raise MalformedReport(
                        f"column {name!r}: {value!r} is not a date", row=index + 1
                    ) from None


def conform(table: pa.Table) -> pa.Table:
    """Cast to the canonical content schema, keeping the report's row order."""
    return table.select(list(schema.NORMALISED.names)).cast(schema.NORMALISED)


def _locate_ragged_row(text: bytes) -> None:
    """A row whose cell count differs from the header's, named by its data row number."""
    import csv

    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return
    reader = csv.reader(lines)
    header = next(reader, [])
    for number, row in enumerate(reader, start=1):
        if row and len(row) != len(header):
            raise MalformedReport(f"{len(row)} cells, the header has {len(header)}", row=number)


def with_lineage(
    content: pa.Table, *, source_version: str, fetched_at: dt.datetime, raw_object: str
) -> pa.Table:
    """The published row: content + lineage, in the revenue schema's column order.

    If the content's text is dictionary-encoded (:func:`content.encode`), the
    lineage text is too: one dictionary entry, no string repeated per row.
    """
    n = content.num_rows
    encoded = pa.types.is_dictionary(content.schema.field("ssp").type)

    def text(value: str) -> pa.Array:
        if encoded:
            return pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array([value], pa.string())
            )
        return pa.repeat(pa.scalar(value, pa.string()), n)

    lineage = {
        "source_version": text(source_version),
        "fetched_at": pa.repeat(pa.scalar(fetched_at, pa.timestamp("us", tz="UTC")), n),
        "raw_object": text(raw_object),
    }
    columns = [content[name] for name in schema.CONTENT_COLUMNS] + list(lineage.values())
    fields = [
        pa.field(field.name, column.type, nullable=field.nullable)
        for field, column in zip(schema.REVENUE, columns, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=schema.REVENUE.metadata))
