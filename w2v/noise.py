"""Noise distribution for negative sampling: unigram counts ** ns_exponent, drawn on the device."""
from __future__ import annotations

import torch
from torch import nn


class NoiseSampler(nn.Module):
    """Draws negative word ids with probability proportional to count ** exponent (word2vec: 0.75).

    The weights are a buffer, so they live on the training device with the model and every draw
    is one `torch.multinomial` call there."""

    def __init__(self, counts: torch.Tensor, exponent: float = 0.75):
        super().__init__()
        weights = counts.to(torch.float64).pow(exponent)
        self.register_buffer("weights", (weights / weights.sum()).to(torch.float32))

    def forward(self, rows: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A [rows, k] tensor of noise word ids (empty for a chunk without examples)."""
        if rows * k == 0:  # torch.multinomial refuses to draw no samples
            return torch.zeros((rows, k), dtype=torch.long, device=self.weights.device)
        draws = torch.multinomial(self.weights, rows * k, replacement=True, generator=generator)
        return draws.view(rows, k)
