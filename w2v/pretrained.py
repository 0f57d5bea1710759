"""Pretrained vectors: copy a word2vec file's vectors into the rows of the words a table already has."""
from __future__ import annotations

import logging

import numpy as np
import torch

from .errors import TrainingError
from .export import load_word2vec

log = logging.getLogger("w2v")


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


def lock_factors(size: int, rows: np.ndarray, lockf: float) -> np.ndarray | None:
    """Per-row update factors: `lockf` for `rows`, 1 elsewhere; None when every factor is 1."""
    if lockf == 1.0 or not len(rows):
        return None
    lock = np.ones(size, dtype=np.float32)
    lock[rows] = lockf
    return lock


def init_from_file(table: torch.Tensor, words: list[str], train_cfg) -> torch.Tensor | None:
    """Apply `train.init_vectors` to a freshly initialised input table (on any device): the rows of
    the words the file has take its vectors. Returns the rows' lock factors (`train.init_lockf`)
    as a [V] tensor, or None when nothing is locked."""
    path = train_cfg.init_vectors
    host = table.detach().to("cpu").numpy().copy()
    try:
        rows = intersect(words, host, path)
    except (OSError, ValueError) as e:
        raise TrainingError(f"train.init_vectors: {e}") from None
    log.info("train.init_vectors: %d of %d words start from %s (lock factor %g)", len(rows), len(words), path,
             train_cfg.init_lockf)
    with torch.no_grad():
        table.copy_(torch.from_numpy(host).to(table.device))
    lock = lock_factors(len(words), rows, train_cfg.init_lockf)
    return None if lock is None else torch.from_numpy(lock)
