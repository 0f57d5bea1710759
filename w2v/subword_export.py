"""A subword model's files in the output set: the whole model (w2v reloads it) and fastText's .bin."""

from pathlib import Path

import numpy as np

from w2v.fasttext_bin import args_from_config, save_fasttext_bin
from w2v.fasttext_kv import FastTextKeyedVectors

# The whole model: FastTextKeyedVectors.save writes MODEL_NAME and these files beside it.
MODEL_NAME = "subword_model"
MODEL_FILES = (MODEL_NAME, *(MODEL_NAME + suffix for suffix in FastTextKeyedVectors.SIDECARS))
FASTTEXT_BIN = "fasttext.bin"
NAMES = (*MODEL_FILES, FASTTEXT_BIN)


def save_subword_model(out_dir, words, counts, input_full, output, index, cfg, vectors=None):
    """Write the whole model (`subword_model`: vocabulary, composed vectors, input table [V + buckets,
    D], output table) and fastText's `fasttext.bin` into `out_dir`. `index` is the vocabulary's
    SubwordIndex (reused, not recomputed); `vectors` the composed vectors when already at hand."""
    out_dir = Path(out_dir)
    m = cfg.model
    if index is not None and index.offsets.device.type != "cpu":
        index = None  # a GPU run's index: recomputing it on the CPU costs less than copying it back
    kv = FastTextKeyedVectors(words, _numpy(input_full), m.minn, m.maxn, m.buckets, counts,
                              vectors=None if vectors is None else _numpy(vectors), index=index)
    output = _numpy(output)
    kv.save(out_dir / MODEL_NAME, output=output)
    save_fasttext_bin(out_dir / FASTTEXT_BIN, kv, output, args_from_config(cfg, int(np.sum(kv.counts))))
    return kv


def _numpy(table):
    return table.numpy() if hasattr(table, "numpy") else np.asarray(table)
