"""The negative-sampling objective and its gradient with respect to the scores."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_sampling_loss(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-example loss -log s(u.v+) - sum_k log s(-u.v_k) from scores [B, 1+K] (positive first).

    `valid` [B, 1+K] masks out noise words equal to the positive word, which word2vec.c skips."""
    signs = torch.ones_like(scores)
    signs[:, 1:] = -1.0
    return -(F.logsigmoid(signs * scores) * valid).sum(dim=1)


def score_gradient(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """-d loss / d score: (label - sigmoid(score)), word2vec.c's `g` before the learning rate."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return (labels - torch.sigmoid(scores)) * valid
