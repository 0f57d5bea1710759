"""Pretrained vectors: copy a word2vec file's vectors into the rows of the words a table already has."""
from __future__ import annotations

import numpy as np

from .export import load_word2vec


def intersect(words: list[str], table: np.ndarray, path, binary: bool | None = None,
              unicode_errors: str = "strict") -> np.ndarray:
    """Overwrite, in place, the rows of `table` ([len(words), D]) whose word is in the word2vec file
    at `path` (text or binary; `binary=None` detects it) with the file's vectors. No word is added.
    Returns the indices of the rows replaced, ascending. A file of another dimension is an error
    naming it."""
    file_words, vectors = load_word2vec(path, binary=binary, unicode_errors=unicode_errors)
    if vectors.shape[1] != table.shape[1]:
        raise ValueError(f"{path}: vectors of dimension {vectors.shape[1]}, the model's are {table.shape[1]} "
                         f"(vector_size / model.dim)")
    index = {w: i for i, w in enumerate(words)}
    # Later lines of the file win over earlier ones for a repeated word, as a plain copy would do.
    pairs = {index[w]: j for j, w in enumerate(file_words) if w in index}
    rows = np.fromiter(sorted(pairs), dtype=np.int64, count=len(pairs))
    if len(rows):
        table[rows] = vectors[[pairs[r] for r in rows.tolist()]]
    return rows
