"""A batch's content identity: one hash for one set of figures, in any row order
and however the rows arrive in batches.

The version of a published batch is this hash, so it must be the same for the
same figures however the SSP orders its rows or a reader cuts them into record
batches, and different as soon as one figure moves. It is computed one batch at
a time (:class:`ContentHasher`), so a day of any size is hashed in the memory
of one batch, and sorts nothing:

* each row becomes a 64-bit state by chaining its column words through a
  bijective mixer (splitmix64's finaliser): two rows that differ in one column
  word always get different states;
* the table is the multiset of its row states, summed (mod 2**64) in two
  differently-salted lanes: a sum is order-independent, adds up across
  batches and counts duplicates, and a single changed row changes both sums.

Column words: a text is its bytes chained through the same mixer 8 at a time
(:func:`text_hashes`, once per distinct text in a batch, vectorised; nothing
kept between batches, so memory does not grow with the day's distinct texts),
integers and dates their
two's-complement value, money its unscaled 64-bit integer (``decimal128(18,
6)`` always fits in 64 bits). The grain columns come first in the schema, so
a row's state after them is its grain key: validation finds duplicate keys
across batches with it, and publishing uses it to share rows among files.

Only sha256 and our own constants are involved, so the hash does not
change with a library upgrade. ``CONTENT_HASH_SCHEME`` names the scheme and is
part of what is hashed. ``rowsum-splitmix64-v1`` ranked each text among the
whole column's distinct texts, which needs the whole day at once; a lake
published under it migrates by itself (README, "Content hash schemes and an
existing lake").
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ssp_revenue.core import schema

CONTENT_HASH_SCHEME = "rowsum-splitmix64-v2"
TEXT = pa.dictionary(pa.int32(), pa.string())
GRAIN_WIDTH = len(schema.GRAIN)
assert schema.NORMALISED.names[:GRAIN_WIDTH] == list(schema.GRAIN)  # the grain key is a prefix
_SEED = np.uint64(0x9E3779B97F4A7C15)
_LANES = (np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344))
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TEXT_SEED = np.uint64(0x452821E638D01377)
_TEXT_CHUNK = 65_536  # distinct texts padded at a time: bounds the scratch matrix
_SPLIT_ROWS = 200_000  # a batch this large is hashed in two halves, one per core


class ContentHasher:
    """The content hash of every batch given to :meth:`update`, in any order.

    Feeding a table whole, or its rows shuffled in batches of any size, gives
    the same :meth:`hexdigest`.
    """

    def __init__(self) -> None:
        self.rows = 0
        self._sums = [0] * len(_LANES)

    def update(self, batch: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Add a batch of content rows (any column order; text plain or dictionary-encoded).

        Returns the batch's grain keys, one uint64 per row: equal rows' grains have
        equal keys.
        """
        n = batch.num_rows
        words = [self._word(name, _one_array(batch.column(name))) for name in schema.NORMALISED.names]
        grain = np.empty(n, dtype=np.uint64)
        if n < _SPLIT_ROWS:
            sums = _lane_sums(words, grain, 0, n)
        else:  # sums add up across row ranges: two halves, one per core (numpy releases the GIL)
            middle = n // 2
            with ThreadPoolExecutor(max_workers=2) as pool:
                halves = list(pool.map(lambda span: _lane_sums(words, grain, *span),
                                       [(0, middle), (middle, n)]))
            sums = [sum(h[lane] for h in halves) for lane in range(len(_LANES))]
        self.rows += n
        self._sums = [(total + more) % 2**64 for total, more in zip(self._sums, sums, strict=True)]
        return grain

    def hexdigest(self) -> str:
        digest = hashlib.sha256(
            f"scheme={CONTENT_HASH_SCHEME}\nschema={schema.SCHEMA_VERSION}\nrows={self.rows}\n"
            f"columns={','.join(schema.NORMALISED.names)}\n".encode()
        )
        for total in self._sums:
            digest.update(total.to_bytes(8, "little"))
        return digest.hexdigest()

    def _word(self, name: str, array: pa.Array) -> np.ndarray:
        """One uint64 per row that stands for the row's value in this column."""
        if array.null_count:
            raise ValueError(f"column {name}: {array.null_count} null values")
        kind = array.type
        if pa.types.is_dictionary(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return _text_words(array)
        if pa.types.is_decimal(kind):
            if kind.precision > 18:
                raise TypeError(f"content hash: {kind} does not fit in 64 bits")
            words = np.frombuffer(
                array.buffers()[1], dtype=np.int64, count=2 * (len(array) + array.offset)
            ).reshape(-1, 2)[array.offset:, 0]
            return np.ascontiguousarray(words.view(np.uint64))
        if pa.types.is_date32(kind):
            values: np.ndarray = array.view(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
            return values.view(np.uint64)
        if pa.types.is_integer(kind):
            return np.ascontiguousarray(
                array.cast(pa.int64()).to_numpy(zero_copy_only=False).view(np.uint64))
        raise TypeError(f"content hash: no word for {kind} in column {name}")


def _text_words(array: pa.Array) -> np.ndarray:
    """Each row's text as its word: the batch's distinct texts hashed, then gathered."""
    encoded = array if isinstance(array, pa.DictionaryArray) else pc.dictionary_encode(array)
    dictionary = encoded.dictionary.cast(pa.string())
    table = np.concatenate([text_hashes(dictionary.slice(start, _TEXT_CHUNK))
                            for start in range(0, len(dictionary), _TEXT_CHUNK)] or
                           [np.empty(0, dtype=np.uint64)])
    words: np.ndarray = table[encoded.indices.to_numpy(zero_copy_only=False)]
    return words


def text_hashes(strings: pa.Array) -> np.ndarray:
    """A 64-bit word per string, vectorised: its UTF-8 bytes as 8-byte little-endian
    words (the last zero-padded), chained through the mixer, then its length mixed in (so
    ``"a"`` and ``"a\\0"`` differ). Equal texts, equal words, in any batch."""
    n = len(strings)
    state = np.full(n, _TEXT_SEED, dtype=np.uint64)
    if n == 0:
        return state
    offsets = _offsets(strings).astype(np.int64)
    lengths = np.diff(offsets)
    width = max(8, int(-(-int(lengths.max()) // 8) * 8))
    padded = np.zeros((n, width), dtype=np.uint8)
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    rows = np.repeat(np.arange(n), lengths)
    columns = np.arange(len(data)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    padded[rows, columns] = data
    words = padded.view("<u8")
    scratch = np.empty_like(state)
    chained = np.maximum(1, -(-lengths // 8))  # a text's own words only, not the batch's padding
    for column in range(words.shape[1]):
        active = np.flatnonzero(chained > column)
        if len(active) == n:
            np.bitwise_xor(state, words[:, column], out=state)
            _mix(state, scratch)
        else:
            part = np.bitwise_xor(state[active], words[active, column])
            _mix(part, np.empty_like(part))
            state[active] = part
    np.bitwise_xor(state, lengths.astype(np.uint64), out=state)
    _mix(state, scratch)
    return state


def content_hash(content: pa.Table) -> str:
    """sha256 hex digest of a batch's business content (lineage excluded)."""
    return encoded_hash(encode(content))


def encoded_hash(table: pa.Table) -> str:
    """:func:`content_hash` of a table :func:`encode` returned (publishing encodes once)."""
    hasher = ContentHasher()
    hasher.update(table)
    return hasher.hexdigest()


def _one_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return column.combine_chunks()
    return column


def _lane_sums(words: list[np.ndarray], grain: np.ndarray, start: int, stop: int) -> list[int]:
    """Chain the rows ``start:stop`` through their column words (keeping the grain
    key on the way); the lanes' sums mod 2**64."""
    state = np.full(stop - start, _SEED, dtype=np.uint64)
    scratch = np.empty_like(state)
    for column, word in enumerate(words):
        np.bitwise_xor(state, word[start:stop], out=state)
        _mix(state, scratch)
        if column == GRAIN_WIDTH - 1:
            grain[start:stop] = state
    sums = []
    for lane in _LANES:
        lane_state = np.bitwise_xor(state, lane)
        _mix(lane_state, scratch)
        sums.append(int(lane_state.sum(dtype=np.uint64)))
    return sums


def encode(content: pa.Table) -> pa.Table:
    """The content columns in schema order, text as ``dictionary<int32, string>``.

    Idempotent. Like :func:`normalise.conform` it refuses nulls and casts the
    other columns to the content schema; a column holding one text is encoded
    without hashing it.
    """
    fields = list(schema.NORMALISED)
    with ThreadPoolExecutor(max_workers=2) as pool:  # pyarrow and numpy release the GIL
        columns = list(pool.map(lambda f: _encoded(content[f.name], f), fields))
    typed = [pa.field(f.name, c.type, nullable=False) for f, c in zip(fields, columns, strict=True)]
    return pa.Table.from_arrays(columns, schema=pa.schema(typed, metadata=schema.NORMALISED.metadata))


def _encoded(column: pa.ChunkedArray, field: pa.Field) -> pa.Array:
    """One array: text dictionary-encoded with distinct entries, the rest cast."""
    if column.null_count:
        raise ValueError(f"column {field.name}: {column.null_count} null values")
    if field.type != pa.string():
        return column.cast(field.type).combine_chunks()
    if column.type == TEXT and column.num_chunks == 1:
        dictionary = column.chunk(0).dictionary
        if len(pc.unique(dictionary)) == len(dictionary):
            return column.chunk(0)  # already encoded
    text = column.cast(pa.string())
    first = text[0].as_py() if len(text) else None
    if first is not None and all(_holds_only(chunk, first.encode()) for chunk in text.chunks):
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(len(text), dtype=np.int32)), pa.array([first], pa.string())
        )
    return pc.dictionary_encode(text.combine_chunks())


def _holds_only(chunk: pa.Array, value: bytes) -> bool:
    """Whether a string chunk is ``value`` repeated, compared as raw bytes (no hashing)."""
    if len(chunk) == 0:
        return True
    offsets = _offsets(chunk)
    width = len(value)
    if offsets[-1] - offsets[0] != width * len(chunk):
        return False
    if not np.array_equal(np.diff(offsets), np.full(len(chunk), width, dtype=np.int32)):
        return False
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return width == 0 or bool((data.reshape(-1, width) == np.frombuffer(value, np.uint8)).all())


def _offsets(strings: pa.Array) -> np.ndarray:
    """The value offsets of a string array, as numpy (no copy)."""
    start = strings.offset
    return np.frombuffer(strings.buffers()[1], dtype=np.int32)[start:start + len(strings) + 1]


def _mix(x: np.ndarray, tmp: np.ndarray) -> None:
    """splitmix64's finaliser, in place: a bijection of uint64 with full avalanche."""
    with np.errstate(over="ignore"):
        np.right_shift(x, np.uint64(30), out=tmp)
        np.bitwise_xor(x, tmp, out=x)
        np.multiply(x, _M1, out=x)
        np.right_shift(x, np.uint64(27), out=tmp)
        np.bitwise_xor(x, tmp, out=x)
        np.multiply(x, _M2, out=x)
        np.right_shift(x, np.uint64(31), out=tmp)
        np.bitwise_xor(x, tmp, out=x)
