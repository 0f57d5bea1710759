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
    rows, src = shared_rows(words, file_words)
    if len(rows):
        table[rows] = vectors[src]
    return rows


def shared_rows(words: list[str], file_words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, src): the indices in `words` of the words the file has, ascending, and each one's
    index in `file_words`. Later entries of the file win for a repeated word, as a plain copy would."""
    index = {w: i for i, w in enumerate(words)}
    pairs = {index[w]: j for j, w in enumerate(file_words) if w in index}
    rows = np.fromiter(sorted(pairs), dtype=np.int64, count=len(pairs))
    return rows, np.asarray([pairs[r] for r in rows.tolist()], dtype=np.int64)


def load_subword_model(path):
    """(FastTextKeyedVectors, output table or None) of a w2v subword model (`subword_model` of an
    output folder, or FastTextKeyedVectors.save's file) or of a fastText .bin."""
    from .fasttext_bin import load_fasttext_bin
    from .fasttext_kv import FastTextKeyedVectors
    if FastTextKeyedVectors.is_saved_model(path):
        return FastTextKeyedVectors.load(path), FastTextKeyedVectors.load_output(path)
    kv, output, _ = load_fasttext_bin(path)
    return kv, output


def intersect_subword_model(words: list[str], table: np.ndarray, output: np.ndarray, path, model_cfg) -> np.ndarray:
    """Continue a subword model: overwrite, in place, the input rows of the words of `words` that
    the model at `path` has, all its n-gram bucket rows, and (negative sampling: `output` has a
    row per word) those words' output rows. Its minn, maxn, buckets and dimension must be the
    config's (model.minn, model.maxn, model.buckets, model.dim). Returns the word rows replaced."""
    m = model_cfg
    kv, out = load_subword_model(path)
    V, n = len(words), len(kv)
    theirs = {"model.minn": kv.min_n, "model.maxn": kv.max_n, "model.dim": kv.vector_size}
    if m.maxn > 0:
        theirs["model.buckets"] = kv.bucket
    for key, value in theirs.items():
        mine = getattr(m, key.split(".")[1])
        if value != mine:
            raise ValueError(f"{path}: a subword model with {key.split('.')[1]} {value}; the config's {key} is {mine}")
    rows, src = shared_rows(words, kv.index_to_key)
    full = kv.input_table
    if len(rows):
        table[rows] = full[src]
        if out is not None and output.shape[0] == V and out.shape[0] == n:
            output[rows] = out[src]
    if table.shape[0] > V:
        table[V:] = full[n:]
    return rows


def lock_factors(size: int, rows: np.ndarray, lockf: float) -> np.ndarray | None:
    """Per-row update factors: `lockf` for `rows`, 1 elsewhere; None when every factor is 1."""
    if lockf == 1.0 or not len(rows):
        return None
    lock = np.ones(size, dtype=np.float32)
    lock[rows] = lockf
    return lock


def start_rows(words: list[str], table: np.ndarray, output: np.ndarray, model_cfg, path, subwords: bool) -> np.ndarray:
    """`train.init_vectors` on fresh tables, in place: a word2vec file's vectors into the shared
    words' input rows (intersect) or, for a model with n-grams, a subword model's rows
    (intersect_subword_model). Returns the word rows set."""
    if subwords:
        return intersect_subword_model(words, table, output, path, model_cfg)
    return intersect(words, table, path)


def init_from_file(model, words: list[str], cfg) -> torch.Tensor | None:
    """Apply `train.init_vectors` to a freshly initialised model's tables (on any device), as
    start_rows does. Returns the lock factors (`train.init_lockf`) of the word rows set as a [V]
    tensor (a subword model's n-gram rows, which every word shares, stay free), or None when
    nothing is locked."""
    path, train_cfg, subwords = cfg.train.init_vectors, cfg.train, model.subwords is not None
    tables = [model.in_embed.weight.data, model.out_embed.weight.data]
    host = [t.detach().to("cpu").numpy().copy() for t in tables]
    try:
        rows = start_rows(words, host[0], host[1], cfg.model, path, subwords)
    except (OSError, ValueError) as e:
        raise TrainingError(f"train.init_vectors: {e}") from None
    log.info("train.init_vectors: %d of %d words%s start from %s (lock factor %g)", len(rows), len(words),
             " and the n-gram buckets" if subwords else "", path, train_cfg.init_lockf)
    with torch.no_grad():
        for t, h in zip(tables, host):
            t.copy_(torch.from_numpy(h).to(t.device))
    lock = lock_factors(len(words), rows, train_cfg.init_lockf)
    return None if lock is None else torch.from_numpy(lock)
