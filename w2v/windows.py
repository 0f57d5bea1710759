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
    eff, start, end = _draw_windows(sentence, window, generator)
    offsets = torch.cat([torch.arange(-window, 0, device=device), torch.arange(1, window + 1, device=device)])
    # j is in i's sentence when start[i] <= j < end[i]: comparisons of int32 positions, where
    # gathering sentence[pos] took two int64 [N, 2W] temporaries. The positions are int32 for the
    # same reason (a chunk is far below 2^31 tokens).
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
    eff, start, end = _draw_windows(sentence, window, generator)
    centre = torch.arange(sentence.shape[0], dtype=torch.int32, device=sentence.device)
    return torch.maximum(centre - eff, start), torch.minimum(centre + eff, end - 1)


def _draw_windows(sentence: torch.Tensor, window: int, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each centre word's effective window (uniform in 1..window, one draw per word) and its
    sentence's first and one-past-last positions (sentence ids are sorted), all int32."""
    eff = torch.randint(1, window + 1, (sentence.shape[0],), generator=generator, device=sentence.device)
    start = torch.searchsorted(sentence, sentence, side="left")
    end = torch.searchsorted(sentence, sentence, side="right")
    return eff.to(torch.int32), start.to(torch.int32), end.to(torch.int32)
