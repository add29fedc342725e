"""The one CSV writer for every file the product writes: vectorised, and safe to open in a spreadsheet.

Segment exports, the scores export, the Outbox download and every header made from a
user-given name go through `CsvWriter`. It formats whole columns at once with Arrow compute
kernels (no Python loop per row) and writes the bytes Python's `csv.writer` would
(QUOTE_MINIMAL, "\\r\\n" line ends), so files stay byte-identical to earlier versions.

Formula neutralisation: a text cell starting with =, +, -, @, tab or CR gets a leading
apostrophe, so a spreadsheet shows it instead of running it. Columns of numbers we write
ourselves (counts, scores) are numbers, not text, and stay as they are: "-3" in a numeric
column is a number. Every text column is user-supplied data and is always neutralised, even
when it looks like a number ("-5" as a first name becomes "'-5").
"""

from __future__ import annotations

import io
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NEEDS_QUOTES = '[,"\r\n]'  # what makes csv.writer (QUOTE_MINIMAL) quote a field


def neutralise(value: str | None) -> str | None:
    """One text cell a spreadsheet will show, not run."""
    if value and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


_RISKY_FIRST = np.zeros(256, dtype=bool)
_RISKY_FIRST[[ord(c) for c in FORMULA_STARTS]] = True
_QUOTE_SPECIALS = (b",", b'"', b"\r", b"\n")


def _utf8(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's bytes and offsets as numpy views (no copy)."""
    _, offsets, data = values.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[values.offset : values.offset + len(values) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return raw, bounds


def neutralise_column(values: pa.Array) -> pa.Array:
    """`neutralise` over a whole string column (nulls stay null).

    The first byte of every cell is checked with one numpy gather; the column is rewritten
    only when some cell starts like a formula (rare in real data).
    """
    values = values.cast(pa.string())
    if len(values) == 0:
        return values
    raw, bounds = _utf8(values)
    starts, lengths = bounds[:-1], np.diff(bounds)
    risky = np.zeros(len(values), dtype=bool)
    filled = lengths > 0
    risky[filled] = _RISKY_FIRST[raw[starts[filled]]]
    if values.null_count:
        risky &= values.is_valid().to_numpy(zero_copy_only=False)
    if not risky.any():
        return values
    return pc.if_else(pa.array(risky), pc.binary_join_element_wise("'", values, ""), values)


def _quoted(values: pa.Array) -> pa.Array:
    """csv.writer's QUOTE_MINIMAL: quote (and double the quotes of) cells holding , " CR or LF."""
    if len(values) == 0:
        return values
    raw, bounds = _utf8(values)
    blob = raw[bounds[0] : bounds[-1]].tobytes()
    if not any(special in blob for special in _QUOTE_SPECIALS):  # memchr-fast: usually nothing to do
        return values
    needs = pc.match_substring_regex(values, _NEEDS_QUOTES)
    escaped = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(needs, escaped, values)


def _lines(columns: Sequence[pa.Array]) -> pa.Array:
    """Each row's CSV line, "\\r\\n" included; a null cell is an empty field."""
    cells = [_quoted(column.cast(pa.string())) for column in columns]
    # The line end rides on the last cell, so the whole line is one join over the columns.
    cells[-1] = pc.binary_join_element_wise(cells[-1], "\r\n", "", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(*cells, ",", null_handling="replace", null_replacement="")


def _payload(lines: pa.Array) -> memoryview:
    """The concatenated bytes of a string array, without copying them."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if len(lines) == 0:
        return memoryview(b"")
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return memoryview(data)[int(bounds[0]) : int(bounds[-1])]


class CsvWriter:
    """Writes a header, then batches of columns, to a binary or text stream.

    `text` marks the columns that hold user text (neutralised); the others are written as
    they are (numbers and flags we formatted ourselves). The header is always neutralised:
    it may carry a user-given name (a prediction's).
    """

    def __init__(self, out: IO, header: Sequence[str], text: Sequence[bool] | None = None):
        self._out = out
        self._binary = not isinstance(out, io.TextIOBase)
        self._text = list(text) if text is not None else [True] * len(header)
        if len(self._text) != len(header):
            raise ValueError("one text flag per column")
        self.rows = 0
        self._write(_payload(_lines([neutralise_column(pa.array([name], pa.string())) for name in header])))

    def _write(self, payload: memoryview) -> None:
        if self._binary:
            self._out.write(payload)
        else:
            self._out.write(bytes(payload).decode("utf-8"))

    def _format(self, columns: Sequence) -> tuple[pa.Array | None, int]:
        arrays = []
        for column, is_text in zip(columns, self._text, strict=True):
            array = column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column)
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            arrays.append(neutralise_column(array) if is_text else array)
        if not arrays or len(arrays[0]) == 0:
            return None, 0
        return _lines(arrays), len(arrays[0])

    def _emit(self, formatted: tuple[pa.Array | None, int]) -> None:
        lines, rows = formatted
        if lines is not None:
            self._write(_payload(lines))
            self.rows += rows

    def write(self, columns: Sequence[pa.Array | pa.ChunkedArray | Sequence]) -> None:
        """One batch: a column per header field, all the same length."""
        self._emit(self._format(columns))

    def write_all(self, batches: Iterable[Sequence], workers: int = 2) -> None:
        """Every batch, in order, formatting up to `workers` batches at once (Arrow kernels release
        the GIL); at most `workers` formatted batches wait, so memory stays bounded."""
        if workers <= 1:
            for columns in batches:
                self.write(columns)
            return
        pending: deque[Future] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="csv") as pool:
            for columns in batches:
                pending.append(pool.submit(self._format, columns))
                if len(pending) >= workers:
                    self._emit(pending.popleft().result())
            while pending:
                self._emit(pending.popleft().result())


class _Chunks(io.RawIOBase):
    """A binary sink that hands over what was written to it since it was last drained."""

    def __init__(self):
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, payload) -> int:
        self._parts.append(bytes(payload))
        return len(payload)

    def drain(self) -> bytes:
        chunk, self._parts = b"".join(self._parts), []
        return chunk


def csv_chunks(
    header: Sequence[str],
    batches: Iterable[Sequence],
    text: Sequence[bool] | None = None,
    done: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The bytes `write_csv` would write, as they are made: the header, then one chunk per batch.

    For a download that streams: one batch is formatted at a time, and nothing is kept once it
    is read. `done(rows)` is called after the last chunk, not when the reader stops early.
    """
    sink = _Chunks()
    writer = CsvWriter(sink, header, text)
    yield sink.drain()
    for columns in batches:
        writer.write(columns)
        if chunk := sink.drain():
            yield chunk
    if done is not None:
        done(writer.rows)


def open_output(target: IO | str | Path) -> tuple[IO, bool]:
    """A stream for `target` (a path, '-', or an open stream) and whether the caller must close it."""
    if isinstance(target, (str, Path)):
        if str(target) == "-":
            return getattr(sys.stdout, "buffer", sys.stdout), False
        return open(target, "wb"), True
    return target, False


def write_csv(
    target: IO | str | Path,
    header: Sequence[str],
    batches: Iterable[Sequence],
    text: Sequence[bool] | None = None,
) -> int:
    """Write a whole CSV (header, then each batch of columns); returns the number of rows."""
    out, owned = open_output(target)
    try:
        writer = CsvWriter(out, header, text)
        writer.write_all(batches)
        return writer.rows
    finally:
        if owned:
            out.close()


def fixed_decimals(values, places: int = 2) -> pa.Array:
    """Numbers as `f"{v:.{places}f}"` would print them (NaN: an empty cell), for a whole column."""
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    product = np.where(missing, 0.0, values) * 10**places
    scaled = np.rint(product).astype(np.int64)
    negative = scaled < 0
    scaled = np.abs(scaled)
    whole = pc.cast(pa.array(scaled // 10**places), pa.string())
    fraction = pc.utf8_lpad(pc.cast(pa.array(scaled % 10**places), pa.string()), places, "0")
    text = pc.binary_join_element_wise(whole, fraction, ".")
    text = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", text, ""), text)
    # Near a half the product's rounding error can flip the digit: Python decides those few.
    near_half = np.flatnonzero(~missing & (np.abs(np.abs(product - np.trunc(product)) - 0.5) < 1e-6))
    if len(near_half):
        exact = pa.array([f"{v:.{places}f}" for v in values[near_half].tolist()], pa.string())
        text = pc.replace_with_mask(text, _positions_mask(len(values), near_half), exact)
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)


def _positions_mask(size: int, positions: np.ndarray) -> pa.Array:
    mask = np.zeros(size, dtype=bool)
    mask[positions] = True
    return pa.array(mask)


def text_columns(rows: Sequence[Sequence]) -> list[pa.Array]:
    """Rows (tuples) as one text column per field: None is an empty cell, any other value its str()."""
    return [
        pa.array([None if v is None else str(v) for v in column], pa.string()) for column in zip(*rows, strict=True)
    ]
