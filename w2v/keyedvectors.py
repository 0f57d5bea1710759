"""PLACEHOLDER until branch kv's KeyedVectors is merged (then this file is replaced by kv's)."""
from __future__ import annotations

import numpy as np


class KeyedVectors:
    """Minimal stand-in with the shared contract's constructor; replaced by kv's class."""

    def __init__(self, words, vectors, counts=None):
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        self.vectors = vectors
        self.counts = counts

    def __getitem__(self, word):
        return self.vectors[self.key_to_index[word]]

    def __contains__(self, word):
        return word in self.key_to_index

    def __len__(self):
        return len(self.index_to_key)

    @property
    def vector_size(self):
        return self.vectors.shape[1]

    def get_vecattr(self, word, attr):
        return int(self.counts[self.key_to_index[word]])

    def similarity(self, a, b):
        u, v = self[a], self[b]
        return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
