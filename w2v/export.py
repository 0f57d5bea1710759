"""Read and write embeddings in word2vec.c's text and binary formats."""

import os

import numpy as np

from w2v.atomic import atomic_write

# Rows formatted per write: bounds memory (a formatted block of 1024 rows was the last 4 MB of
# a run's peak) without per-row writes.
_CHUNK_ROWS = 256
# word2vec.c splits tokens on ASCII whitespace only, so e.g. a no-break space may sit inside a word.
_SEPARATORS = frozenset(" \t\n\r\v\f")
# Extensions that name a text file: a malformed one should get text-format error messages.
_TEXT_EXTENSIONS = (".txt", ".vec")


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
    for word in words:
        # The formats separate a word from its values by a space, so these would corrupt the file.
        if _bad_word(word):
            raise ValueError(f"word {word!r} is empty, not a str, or contains whitespace")
    return words, vectors


def save_word2vec_text(path, words, vectors):
    """Write `V D` then one `word v1 ... vD` line per word, in the given (frequency) order.

    Values use '%.9g', the shortest fixed precision that round-trips every float32 exactly.
    """
    words, vectors = _check(words, vectors)
    n, dim = vectors.shape
    row_fmt = " ".join(["%.9g"] * dim)
    with atomic_write(path, "w") as f:
        f.write(f"{n} {dim}\n")
        for start in range(0, n, _CHUNK_ROWS):
            rows = vectors[start:start + _CHUNK_ROWS].tolist()
            f.write("".join(f"{w} {row_fmt % tuple(r)}\n" for w, r in zip(words[start:], rows)))


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


def _looks_like_text(path, dim):
    """True if the first record after the header parses as a text line of 1 + dim fields."""
    with open(path, "rb") as f:
        f.readline()
        # A text line holds at most a few dozen bytes per value; binary data rarely has a newline there.
        line = f.readline(64 * (dim + 1) + 4096)
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


def _load_text(path, n, dim, unicode_errors):
    words = []
    vectors = np.empty((n, dim), dtype=np.float32)
    # Read bytes and decode per line so a decoding error can name its line.
    with open(path, "rb") as f:
        f.readline()
        lineno = 1
        for raw in f:
            lineno += 1
            try:
                line = raw.decode("utf-8", errors=unicode_errors)
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{lineno}: line is not valid UTF-8") from None
            if not line.strip():
                continue  # tolerate blank lines (e.g. a trailing one)
            if len(words) == n:
                raise ValueError(f"{path}:{lineno}: more vectors than the {n} announced in the header")
            word, _, rest = line.lstrip(" ").partition(" ")
            fields = rest.split()
            if len(fields) != dim:
                raise ValueError(f"{path}:{lineno}: expected {dim} values after word {word!r}, "
                                 f"found {len(fields)}")
            try:
                vectors[len(words)] = np.array(fields, dtype=np.float32)
            except ValueError:
                raise ValueError(f"{path}:{lineno}: non-numeric value in vector of {word!r}") from None
            words.append(word)
    if len(words) != n:
        raise ValueError(f"{path}:{lineno}: file ends after {len(words)} vectors, header announced {n}")
    return words, vectors


def _load_binary(path, n, dim, unicode_errors):
    with open(path, "rb") as f:
        data = f.read()
    pos = data.index(b"\n") + 1
    nbytes = 4 * dim
    words = []
    vectors = np.empty((n, dim), dtype=np.float32)
    for i in range(n):
        where = f"{path}: record {i + 1} (byte {pos}, read as binary word2vec)"
        # Skip the newline closing the previous record (some writers omit or double it).
        while pos < len(data) and data[pos:pos + 1] in b"\n\r":
            pos += 1
        end = data.find(b" ", pos)
        if end < 0 or end + 1 + nbytes > len(data):
            raise ValueError(f"{where}: file ends early, header announced {n} vectors of {dim} values")
        try:
            word = data[pos:end].decode("utf-8", errors=unicode_errors)
        except UnicodeDecodeError:
            raise ValueError(f"{where}: word is not valid UTF-8") from None
        if _bad_word(word):
            raise ValueError(f"{where}: bad word {word!r}")
        words.append(word)
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=end + 1)
        pos = end + 1 + nbytes
    if data[pos:].strip(b"\r\n"):
        raise ValueError(f"{path}: byte {pos}: data after the {n} announced vectors")
    return words, vectors


def load_word2vec(path, binary=None, unicode_errors="strict"):
    """Read a word2vec text or binary file into (words in file order, float32 array (V, D)).

    binary=None sniffs the format: text if the first record parses as a text line
    (or the name ends in .txt/.vec, so a malformed text file gets text-format errors).
    Malformed files raise ValueError naming the file and the line (or binary record).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        header = f.readline()
    try:
        header = header.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{path}:1: bad word2vec header (not ASCII)") from None
    n, dim = _parse_header(path, header)
    if binary is None:
        binary = not (_looks_like_text(path, dim) or path.lower().endswith(_TEXT_EXTENSIONS))
    if binary:
        return _load_binary(path, n, dim, unicode_errors)
    return _load_text(path, n, dim, unicode_errors)
