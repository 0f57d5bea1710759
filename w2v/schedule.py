"""Learning-rate schedule: linear decay with words processed (word2vec.c, gensim)."""
from __future__ import annotations


def linear_lr(alpha: float, min_alpha: float, words_done: float, words_total: float) -> float:
    """alpha at the start, min_alpha when all epochs' words are processed, linear in between.

    word2vec.c uses alpha * (1 - done/total) floored at alpha * 1e-4; gensim decays to
    min_alpha (default 1e-4). Both count raw in-vocabulary words, before subsampling."""
    progress = min(max(words_done / max(words_total, 1.0), 0.0), 1.0)
    return alpha - (alpha - min_alpha) * progress
