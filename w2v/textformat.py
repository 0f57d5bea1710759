"""The lines of a word2vec text file, "word v1 ... vD": written with values as '%.9g' and read
back, in C by all cores (w2v/csrc/textfmt.c), or by Python where the C code cannot be built (and,
when reading, for any line the C reader does not take). Both write the same bytes and read the
same rows; Python's formatting was most of the time a run spent writing its outputs."""
from __future__ import annotations

import ctypes
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .native import CSRC, NativeUnavailable, load_library

SOURCE = CSRC / "textfmt.c"
VALUE_BYTES = 16          # the longest '%.9g' of a float32 ("-1.23456789e-38") and its separator
BLOCK_BYTES = 1 << 20     # formatted bytes per task: bounds memory (tasks in flight: 2 per thread)
PY_ROWS = 256             # rows per write on the Python path

_loaded: dict = {}


def _lib():
    """The compiled formatter, or NativeUnavailable saying why not; remembered per process."""
    if "lib" not in _loaded:
        try:
            lib = load_library(SOURCE, "w2v_textfmt", "the C text formatter")
            lib.w2v_format_rows.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                            ctypes.c_void_p, ctypes.c_void_p]
            lib.w2v_format_rows.restype = ctypes.c_int64
            lib.w2v_format_g9.argtypes = [ctypes.c_float, ctypes.c_char_p]
            lib.w2v_format_g9.restype = ctypes.c_int
            lib.w2v_parse_rows.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                                           ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64),
                                           ctypes.c_void_p]
            lib.w2v_parse_rows.restype = ctypes.c_int64
            lib.w2v_textfmt_init()
            _loaded["lib"] = lib
        except NativeUnavailable as e:
            _loaded["lib"] = e
    if isinstance(_loaded["lib"], NativeUnavailable):
        raise _loaded["lib"]
    return _loaded["lib"]


def available() -> bool:
    try:
        _lib()
        return True
    except NativeUnavailable:
        return False


def format_value(x: float) -> str:
    """One float32 as the C formatter prints it (for the tests against Python's '%.9g')."""
    buf = ctypes.create_string_buffer(32)
    n = _lib().w2v_format_g9(float(x), buf)
    return buf.raw[:n].decode("ascii")


def write_rows(f, words: list[str], vectors: np.ndarray, native: bool | None = None,
               threads: int | None = None) -> None:
    """Write one line per row to the text file `f`: in C over `threads` (default: all cores) when
    `native` is not False and the C code builds, else (or when `native` is False) in Python."""
    if native is not False:
        try:
            lib = _lib()
        except NativeUnavailable:
            if native:
                raise
        else:
            return _write_native(lib, f, words, vectors, threads or os.cpu_count() or 1)
    _write_python(f, words, vectors)


def _write_python(f, words, vectors) -> None:
    row_fmt = " ".join(["%.9g"] * vectors.shape[1])
    for start in range(0, len(words), PY_ROWS):
        rows = vectors[start:start + PY_ROWS].tolist()
        f.write("".join(f"{w} {row_fmt % tuple(r)}\n" for w, r in zip(words[start:], rows)))


def _write_native(lib, f, words, vectors, threads: int) -> None:
    n, dim = vectors.shape
    encoded = [w.encode("utf-8") for w in words]
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(w) for w in encoded], out=off[1:])
    blob = b"".join(encoded)
    base = ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p).value   # blob's bytes, not a copy
    rows = max(1, BLOCK_BYTES // (VALUE_BYTES * dim + 2))

    def block(start: int) -> bytes:
        stop = min(start + rows, n)
        cap = int(off[stop] - off[start]) + (stop - start) * (VALUE_BYTES * dim + 2)
        out = ctypes.create_string_buffer(cap)
        got = lib.w2v_format_rows(vectors[start:stop].ctypes.data, dim, stop - start, base + int(off[start]),
                                  off[start:].ctypes.data, out)
        return ctypes.string_at(out, got)

    # Blocks are formatted by the pool and written in order, as text (decoding is ~1% of the cost).
    for _, text in _in_order(block, range(0, n, rows), threads):
        f.write(text.decode("utf-8"))


def _in_order(work, items, threads: int):
    """(item, work(item)) for each item, in order, the work done by a pool of `threads` with at most
    2 per thread in flight (so memory stays bounded by the blocks in flight, not the file)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(work, item)))
            if len(pending) >= 2 * threads:
                item, done = pending.popleft()
                yield item, done.result()
        while pending:
            item, done = pending.popleft()
            yield item, done.result()


def read_blocks(f, dim: int, native: bool = True, threads: int | None = None):
    """The rest of the text file `f` (binary mode) in blocks of whole lines, each with its rows
    parsed in C by a pool of `threads`: yields (block, its lines, parsed), in order, parsed being
    (values [rows, dim] float32, the rows' words in UTF-8 each ended by a newline, the line of each
    row in the block), or None where the C reader does not take the block (or `native` is False or
    it cannot be built): the caller reads that one in Python."""
    lib = None
    if native:
        try:
            lib = _lib()
        except NativeUnavailable:
            pass

    def parse(block: bytes):
        lines_in_block = block.count(b"\n") + (not block.endswith(b"\n"))
        if lib is None:
            return lines_in_block, None
        # rows the block can hold: lines, and bytes (a row is at least a word byte and dim " 0")
        most = min(lines_in_block, len(block) // (2 * dim + 1) + 1)
        values = np.empty((most, dim), dtype=np.float32)
        words = ctypes.create_string_buffer(len(block) + most)
        lines = np.empty(most, dtype=np.int64)
        used = ctypes.c_int64(0)
        rows = lib.w2v_parse_rows(block, len(block), dim, most, values.ctypes.data, words, ctypes.byref(used),
                                  lines.ctypes.data)
        parsed = None if rows < 0 else (values[:rows], ctypes.string_at(words, used.value), lines[:rows])
        return lines_in_block, parsed

    for block, (lines_in_block, parsed) in _in_order(parse, _line_blocks(f), threads or os.cpu_count() or 1):
        yield block, lines_in_block, parsed


def _line_blocks(f):
    """About BLOCK_BYTES at a time, each block ending with a newline (the last maybe not); a line
    longer than a block is gathered whole, in linear time."""
    parts: list[bytes] = []
    while True:
        data = f.read(BLOCK_BYTES)
        if not data:
            if parts:
                yield b"".join(parts)
            return
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            parts.append(data)
            continue
        parts.append(data[:cut])
        yield b"".join(parts)
        parts = [data[cut:]] if cut < len(data) else []
