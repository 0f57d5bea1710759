"""Huffman tree over the vocabulary, built as word2vec.c's CreateBinaryTree does, for hierarchical softmax."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class HuffmanTree:
    """Per word, the inner nodes on its path from the root and the branch taken at each, padded.

    `points[w, d]` is the inner node (0..V-2, root = V-2) at depth d, `codes[w, d]` the bit of the
    child taken there (word2vec.c's vocab[w].point / vocab[w].code), `lengths[w]` the code length;
    entries at d >= lengths[w] are padding (0)."""
    codes: np.ndarray    # [V, L] uint8
    points: np.ndarray   # [V, L] int64
    lengths: np.ndarray  # [V] int64


def huffman_tree(counts: np.ndarray) -> HuffmanTree:
    """Build the tree over words with these counts (rows of the result follow `counts`' order).

    The merge loop is word2vec.c's, on the words sorted most frequent first (the vocabulary's own
    order, so usually no reordering; a given vocab.txt may be unsorted): two cursors, one walking
    the words from the rarest up, one the inner nodes in creation order; ties go to the inner node.
    It runs once per training (V - 1 steps); the path extraction is vectorised over all words."""
    counts = np.asarray(counts, dtype=np.int64)
    V = len(counts)
    if V < 2:
        raise ValueError(f"hierarchical softmax needs at least 2 words in the vocabulary, got {V}")
    if np.any(np.diff(counts) > 0):
        order = np.argsort(-counts, kind="stable")
        tree = huffman_tree(counts[order])
        rows = np.empty(V, dtype=np.int64)
        rows[order] = np.arange(V)
        return HuffmanTree(tree.codes[rows], tree.points[rows], tree.lengths[rows])
    big = np.iinfo(np.int64).max // 4
    count = counts.tolist() + [big] * (V - 1)
    parent = [0] * (2 * V - 1)
    binary = [0] * (2 * V - 1)
    pos1, pos2 = V - 1, V
    for a in range(V - 1):
        picked = []
        for _ in range(2):
            if pos1 >= 0 and count[pos1] < count[pos2]:
                picked.append(pos1)
                pos1 -= 1
            else:
                picked.append(pos2)
                pos2 += 1
        count[V + a] = count[picked[0]] + count[picked[1]]
        parent[picked[0]] = parent[picked[1]] = V + a
        binary[picked[1]] = 1
    parent_a, binary_a = np.array(parent, dtype=np.int64), np.array(binary, dtype=np.uint8)
    root = 2 * V - 2
    # Walk every word up to the root at once, recording (bit, parent) leaf-first.
    node = np.arange(V, dtype=np.int64)
    bits, inner, lengths = [], [], np.zeros(V, dtype=np.int64)
    while True:
        active = node != root
        if not active.any():
            break
        bits.append(np.where(active, binary_a[node], 0))
        inner.append(np.where(active, parent_a[node] - V, 0))
        lengths += active
        node = np.where(active, parent_a[node], root)
    up_bits, up_inner = np.stack(bits, axis=1), np.stack(inner, axis=1)  # [V, L], leaf first
    L = up_bits.shape[1]
    # Reverse each row's first lengths[w] entries so that depth 0 is the root.
    depth = np.arange(L)
    src = np.clip(lengths[:, None] - 1 - depth, 0, L - 1)
    pad = depth >= lengths[:, None]
    codes = np.where(pad, 0, np.take_along_axis(up_bits, src, axis=1)).astype(np.uint8)
    points = np.where(pad, 0, np.take_along_axis(up_inner, src, axis=1)).astype(np.int64)
    return HuffmanTree(codes, points, lengths)
