"""Shrunk (dynamic) context windows, built as whole tensors: no loop per token or pair."""
from __future__ import annotations

import torch


def context_matrix(sentence: torch.Tensor, window: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each token position i, the positions of its context words and a validity mask.

    Per centre word the effective window b is uniform in 1..window (word2vec.c draws
    `b = rand % window` and uses `window - b`); a context position j is valid when
    0 < |i - j| <= b and j lies in the same sentence. Returns positions [N, 2*window]
    (ordered -window..-1, 1..window) and the mask [N, 2*window]."""
    n = sentence.shape[0]
    device = sentence.device
    eff = torch.randint(1, window + 1, (n,), generator=generator, device=device)
    offsets = torch.cat([torch.arange(-window, 0, device=device), torch.arange(1, window + 1, device=device)])
    pos = torch.arange(n, device=device).unsqueeze(1) + offsets  # [N, 2W]
    inside = (pos >= 0) & (pos < n)
    pos = pos.clamp(0, max(n - 1, 0))
    valid = inside & (offsets.abs() <= eff.unsqueeze(1)) & (sentence[pos] == sentence.unsqueeze(1))
    return pos, valid

