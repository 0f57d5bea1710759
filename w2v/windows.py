"""Shrunk (dynamic) context windows, built as whole tensors: no loop per token or pair."""
from __future__ import annotations

import torch


def context_matrix(sentence: torch.Tensor, window: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each token position i, the positions of its context words and a validity mask.

    Per centre word the effective window b is uniform in 1..window (word2vec.c draws
    `b = rand % window` and uses `window - b`); a context position j is valid when
    0 < |i - j| <= b and j lies in the same sentence (`sentence`: sorted sentence ids). Returns
    int32 positions [N, 2*window] (ordered -window..-1, 1..window) and the mask [N, 2*window]."""
    n = sentence.shape[0]
    device = sentence.device
    eff = torch.randint(1, window + 1, (n,), generator=generator, device=device)
    offsets = torch.cat([torch.arange(-window, 0, device=device), torch.arange(1, window + 1, device=device)])
    # j is in i's sentence when start[i] <= j < end[i] (sentence ids are sorted): comparisons of
    # int32 positions, where gathering sentence[pos] took two int64 [N, 2W] temporaries. The
    # positions are int32 for the same reason (a chunk is far below 2^31 tokens).
    start = torch.searchsorted(sentence, sentence, side="left").to(torch.int32)
    end = torch.searchsorted(sentence, sentence, side="right").to(torch.int32)
    pos = torch.arange(n, dtype=torch.int32, device=device).unsqueeze(1) + offsets.to(torch.int32)  # [N, 2W]
    valid = (pos >= start.unsqueeze(1)) & (pos < end.unsqueeze(1))
    valid &= offsets.abs() <= eff.unsqueeze(1)
    pos.clamp_(0, max(n - 1, 0))  # invalid positions still index safely
    return pos, valid


def window_spans(sentence: torch.Tensor, window: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same windows as `context_matrix` (the same random draw), as int32 bounds [lo, hi] per
    centre word: its contexts are positions lo..hi except itself. A shrunk window clipped to its
    sentence is one contiguous run of positions, so two numbers replace a [2*window] row."""
    n = sentence.shape[0]
    eff = torch.randint(1, window + 1, (n,), generator=generator, device=sentence.device)
    centre = torch.arange(n, device=sentence.device)
    lo = torch.maximum(centre - eff, torch.searchsorted(sentence, sentence, side="left"))
    hi = torch.minimum(centre + eff, torch.searchsorted(sentence, sentence, side="right") - 1)
    return lo.to(torch.int32), hi.to(torch.int32)
