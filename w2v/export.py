"""Read and write embeddings in word2vec.c's text and binary formats."""

import io
import logging
import os
from array import array

import numpy as np

from w2v import textformat
from w2v.atomic import atomic_write

# Rows formatted per write: bounds memory (a formatted block of 1024 rows was the last 4 MB of
# a run's peak) without per-row writes.
_CHUNK_ROWS = 256
# Rows checked for NaN/Inf at a time after loading.
_CHECK_ROWS = 1 << 14
# word2vec.c splits tokens on ASCII whitespace only, so e.g. a no-break space may sit inside a word.
_SEPARATORS = frozenset(" \t\n\r\v\f")
# Extensions that name a text file: a malformed one should get text-format error messages.
_TEXT_EXTENSIONS = (".txt", ".vec")

log = logging.getLogger("w2v")


def _bad_word(word):
    return not isinstance(word, str) or not word or not _SEPARATORS.isdisjoint(word)


def _check(words, vectors):
    """Validate and normalise (words, vectors) to (list[str], float32 C-contiguous 2-D array)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D (V, D), got shape {vectors.shape}")
    words = list(words)
    if len(words) != vectors.shape[0]:
        raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors")
    if vectors.shape[1] == 0:
        raise ValueError("vectors must have at least one dimension")
    # The formats separate a word from its values by a space, so these would corrupt the file.
    # One scan of the joined words finds whether any is bad (a loop finds which only then).
    joined = "\n".join(words) if all(type(w) is str for w in words) else None
    if joined is None or (words and not all(words[i] for i in (0, -1))) or "\n\n" in joined or \
            joined.count("\n") != max(len(words) - 1, 0) or not _SEPARATORS.isdisjoint(joined.replace("\n", "")):
        for word in words:
            if _bad_word(word):
                raise ValueError(f"word {word!r} is empty, not a str, or contains whitespace")
    return words, vectors


def save_word2vec_text(path, words, vectors):
    """Write `V D` then one `word v1 ... vD` line per word, in the given (frequency) order.

    Values use '%.9g', the shortest fixed precision that round-trips every float32 exactly.
    """
    words, vectors = _check(words, vectors)
    n, dim = vectors.shape
    with atomic_write(path, "w") as f:
        f.write(f"{n} {dim}\n")
        textformat.write_rows(f, words, vectors)


def save_word2vec_binary(path, words, vectors):
    """Write word2vec.c's binary format: `V D\\n`, then per word `word ` + D float32 (LE) + `\\n`."""
    words, vectors = _check(words, vectors)
    n, dim = vectors.shape
    data = vectors.astype("<f4", copy=False)
    with atomic_write(path, "wb") as f:
        f.write(f"{n} {dim}\n".encode("ascii"))
        for start in range(0, n, _CHUNK_ROWS):
            block = data[start:start + _CHUNK_ROWS]
            f.write(b"".join(w.encode("utf-8") + b" " + row.tobytes() + b"\n"
                             for w, row in zip(words[start:], block)))


def _parse_header(path, line):
    """Return (V, D) from the first line, or raise naming the file."""
    parts = line.split()
    try:
        if len(parts) != 2:
            raise ValueError
        n, dim = int(parts[0]), int(parts[1])
        if n < 0 or dim <= 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}:1: bad word2vec header {line[:80]!r}, expected 'VOCAB_SIZE DIM'") from None
    return n, dim


def _looks_like_text(path, dim, size):
    """True if the first record after the header parses as a text line of 1 + dim fields."""
    with open(path, "rb") as f:
        f.readline()
        # A text line holds at most a few dozen bytes per value; binary data rarely has a newline there.
        line = f.readline(min(64 * (dim + 1) + 4096, size))
    if not line:
        return True  # nothing after the header: either reader gives the same answer
    try:
        _word, _, rest = line.decode("utf-8").partition(" ")
        fields = rest.split()
        if len(fields) != dim:
            return False
        np.array(fields, dtype=np.float32)
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _capacity(body_bytes, dim, binary):
    """The most vectors `body_bytes` bytes after the header can hold.

    A text record is at least `w` + dim times ` 0` + a newline (the last may lack it); a binary one
    at least `w` + a space + 4 * dim bytes. Used to bound the allocation before any row is read,
    so a damaged header announcing a billion words costs nothing.
    """
    smallest = 4 * dim + 2 if binary else 2 * dim + 2
    return (body_bytes + (0 if binary else 1)) // smallest


def _rows_to_read(n, limit):
    return n if limit is None else max(0, min(n, int(limit)))


def _ends_early(where, got, n, capacity):
    hint = (f" (a file of this size holds at most {capacity}: the header is damaged or the file cut short)"
            if n > capacity else "")
    return ValueError(f"{where}: file ends early, after {got} vectors; header announced {n}{hint}")


def _load_text(path, n, dim, unicode_errors, limit, capacity):
    want = _rows_to_read(n, limit)
    rows = _TextRows(path, n, dim, want, min(want, capacity))
    with open(path, "rb") as f:
        f.readline()
        # Blocks of lines parsed in C; a block the C reader does not take (or any, when a decoding
        # error is to be replaced rather than named) is read line by line below, the reference.
        for block, lines, parsed in textformat.read_blocks(f, dim, native=unicode_errors == "strict"):
            done = rows.add_parsed(block, *parsed) if parsed is not None else \
                rows.add_lines(block, unicode_errors)
            rows.lineno += lines
            if done:
                break
    if len(rows.words) != want:
        raise _ends_early(f"{path}:{rows.lineno}", len(rows.words), n, capacity)
    return rows.words, rows.vectors, lambda i: f"{path}:{rows.lines[i]}"


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class _TextRows:
    """The rows of a text file as they are read, block by block, and the line of each."""

    def __init__(self, path, n, dim, want, room):
        self.path, self.n, self.dim, self.want = path, n, dim, want
        self.words, self.lines = [], array("q")  # the line of each row, for messages about it
        self.vectors = np.empty((room, dim), dtype=np.float32)
        self.lineno = 1   # lines before the block being read (the header)

    def _full(self, lineno) -> bool:
        """A row at `lineno` comes after the rows wanted: stop (a limit) or refuse it."""
        if self.want < self.n:
            return True
        raise ValueError(f"{self.path}:{lineno}: more vectors than the {self.n} announced in the header")

    def add_parsed(self, block, values, words, lines) -> bool:
        """Rows the C reader parsed (values, their words each ended by a newline, the line of
        each in the block); True: stop."""
        base, room = self.lineno + 1, self.want - len(self.words)
        k = min(len(values), room)
        try:
            got = words.decode("utf-8").split("\n")[:k]
        except UnicodeDecodeError:   # an error if Python would have decoded that line: up to row k
            parts = words.split(b"\n")
            bad = next(i for i, w in enumerate(parts) if not _decodes(w))
            if bad <= k:
                raise ValueError(f"{self.path}:{base + int(lines[bad])}: line is not valid UTF-8") from None
            got = [w.decode("utf-8") for w in parts[:k]]
        stop = len(values) > room and self._full(base + int(lines[room]))
        self.words.extend(got)
        self.vectors[len(self.words) - k:len(self.words)] = values[:k]
        self.lines.extend((lines[:k] + base).tolist())
        return stop

    def add_lines(self, block, unicode_errors) -> bool:
        """The block read line by line in Python (decoded per line, so that an error names it)."""
        lineno = self.lineno
        for raw in io.BytesIO(block):
            lineno += 1
            try:
                line = raw.decode("utf-8", errors=unicode_errors)
            except UnicodeDecodeError:
                raise ValueError(f"{self.path}:{lineno}: line is not valid UTF-8") from None
            if not line.strip():
                continue  # tolerate blank lines (e.g. a trailing one)
            if len(self.words) == self.want and self._full(lineno):
                return True
            word, _, rest = line.lstrip(" ").partition(" ")
            fields = rest.split()
            if len(fields) != self.dim:
                raise ValueError(f"{self.path}:{lineno}: expected {self.dim} values after word {word!r}, "
                                 f"found {len(fields)}")
            try:
                self.vectors[len(self.words)] = np.array(fields, dtype=np.float32)
            except ValueError:
                raise ValueError(f"{self.path}:{lineno}: non-numeric value in vector of {word!r}") from None
            self.words.append(word)
            self.lines.append(lineno)
        return False


class _Records:
    """Reads a binary word2vec body block by block, so memory stays bounded by one block."""

    _BLOCK = 1 << 20

    def __init__(self, f, offset):
        self.f, self.buf, self.pos, self.base = f, b"", 0, offset  # base: file offset of buf[0]

    def fill(self, need):
        """Make buf hold `need` bytes from pos if the file has them; False at end of file."""
        while len(self.buf) - self.pos < need:
            more = self.f.read(max(self._BLOCK, need))
            if not more:
                return False
            self.base += self.pos
            self.buf, self.pos = self.buf[self.pos:] + more, 0
        return True

    def find_space(self):
        """Position in buf of the next space at or after pos, or -1 at end of file."""
        start = self.pos
        while True:
            end = self.buf.find(b" ", start)
            if end >= 0:
                return end
            searched = len(self.buf) - self.pos
            if not self.fill(searched + 1):
                return -1
            start = self.pos + searched  # fill() may have moved the data to the buffer's start

    def offset(self):
        return self.base + self.pos


def _load_binary(path, n, dim, unicode_errors, limit, capacity, header_bytes):
    want = _rows_to_read(n, limit)
    nbytes = 4 * dim
    words, starts = [], array("q")  # the byte offset of each record, for messages about it
    vectors = np.empty((min(want, capacity), dim), dtype=np.float32)

    def where(i):
        return f"{path}: record {i + 1} (byte {starts[i]}, read as binary word2vec)"

    with open(path, "rb") as f:
        f.seek(header_bytes)
        rec = _Records(f, header_bytes)
        for i in range(want):
            # Skip the newline closing the previous record (some writers omit or double it).
            while rec.fill(1) and rec.buf[rec.pos] in b"\n\r":
                rec.pos += 1
            starts.append(rec.offset())
            end = rec.find_space()
            if end < 0 or not rec.fill(end - rec.pos + 1 + nbytes):
                raise _ends_early(where(i), i, n, capacity)
            end = rec.buf.find(b" ", rec.pos)  # fill() may have moved the buffer
            try:
                word = rec.buf[rec.pos:end].decode("utf-8", errors=unicode_errors)
            except UnicodeDecodeError:
                raise ValueError(f"{where(i)}: word is not valid UTF-8") from None
            if _bad_word(word):
                raise ValueError(f"{where(i)}: bad word {word!r}")
            words.append(word)
            vectors[i] = np.frombuffer(rec.buf, dtype="<f4", count=dim, offset=end + 1)
            rec.pos = end + 1 + nbytes
        if want == n:
            rec.fill(4096)
            if rec.buf[rec.pos:].strip(b"\r\n"):
                raise ValueError(f"{path}: byte {rec.offset()}: data after the {n} announced vectors")
    return words, vectors, where


def _check_finite(words, vectors, where):
    """Refuse a vector holding NaN or Inf: every similarity with it would be NaN, silently."""
    for start in range(0, len(vectors), _CHECK_ROWS):  # blocks: no mask as large as the table
        bad = ~np.isfinite(vectors[start:start + _CHECK_ROWS]).all(axis=1)
        if bad.any():
            i = start + int(np.argmax(bad))
            raise ValueError(f"{where(i)}: the vector of {words[i]!r} holds NaN or Inf values; "
                             "the file is damaged")


def _drop_duplicates(words, vectors, where):
    """Keep the first (most frequent) row of a word that appears twice, and say so (as gensim does)."""
    first, repeats = {}, []
    for i, word in enumerate(words):
        if first.setdefault(word, i) != i:
            repeats.append(i)
    if not repeats:
        return words, vectors
    shown = "; ".join(f"{where(i)}: duplicate word {words[i]!r} (first at {where(first[words[i]])})"
                      for i in repeats[:3])
    more = f"; and {len(repeats) - 3} more" if len(repeats) > 3 else ""
    log.warning("%s%s: %d duplicate word(s) ignored, the first vector of each is kept", shown, more,
                len(repeats))
    keep = np.ones(len(words), dtype=bool)
    keep[repeats] = False
    return [w for w, k in zip(words, keep) if k], vectors[keep]


def load_word2vec(path, binary=None, unicode_errors="strict", limit=None):
    """Read a word2vec text or binary file into (words in file order, float32 array (V, D)).

    binary=None sniffs the format: text if the first record parses as a text line
    (or the name ends in .txt/.vec, so a malformed text file gets text-format errors).
    `limit` reads only the first `limit` vectors. Malformed files raise ValueError naming the file
    and the line (or binary record); so does a vector holding NaN or Inf. A word that appears twice
    keeps its first vector, with a warning naming both places.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        header = f.readline()
    size = os.path.getsize(path)
    try:
        header_text = header.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}:1: bad word2vec header (not ASCII)") from None
    n, dim = _parse_header(path, header_text)
    body = max(0, size - len(header))
    if binary is None:
        binary = not (_looks_like_text(path, dim, body) or path.lower().endswith(_TEXT_EXTENSIONS))
    capacity = _capacity(body, dim, binary)
    if binary:
        words, vectors, where = _load_binary(path, n, dim, unicode_errors, limit, capacity, len(header))
    else:
        words, vectors, where = _load_text(path, n, dim, unicode_errors, limit, capacity)
    _check_finite(words, vectors, where)
    return _drop_duplicates(words, vectors, where)
