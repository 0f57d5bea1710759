"""Frequent-word subsampling with word2vec.c's keep probability."""
from __future__ import annotations

import torch


def keep_probabilities(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """P(keep word) = min(1, sqrt(s/f) + s/f), f = count / total in-vocabulary tokens (word2vec.c).

    word2vec.c writes it as (sqrt(c / (s*T)) + 1) * (s*T) / c, which is the same expression.
    `sample == 0` keeps every word."""
    counts = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(counts, dtype=torch.float32)
    ratio = sample / (counts / counts.sum())
    return torch.clamp(ratio.sqrt() + ratio, max=1.0).to(torch.float32)


def subsample_mask(ids: torch.Tensor, keep_prob: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Boolean mask of the tokens kept this time; a fresh draw on every call (so every epoch)."""
    draws = torch.rand(ids.shape, generator=generator, device=ids.device)
    return draws < keep_prob[ids]
