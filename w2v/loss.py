"""The binary logistic objective shared by negative sampling and hierarchical softmax, and its gradient."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _positive_first(scores: torch.Tensor) -> torch.Tensor:
    """Negative sampling's labels: 1 for the first column (the positive word), 0 for the noise words."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return labels


def negative_sampling_loss(scores: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor | None = None
                           ) -> torch.Tensor:
    """Per-example loss -sum_j valid_j log s(sign_j score_j) from scores [B, T], sign +1 where the
    label is 1. Default labels: positive first, then K noise words (-log s(u.v+) - sum_k log s(-u.v_k));
    hierarchical softmax passes its path labels (1 - Huffman code bit) instead.

    `valid` [B, T] masks out noise words equal to the positive word, which word2vec.c skips
    (and, for hierarchical softmax, the padding past a word's code length)."""
    if labels is None:
        labels = _positive_first(scores)
    return -(F.logsigmoid((2.0 * labels - 1.0) * scores) * valid).sum(dim=1)


def score_gradient(scores: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """-d loss / d score: (label - sigmoid(score)), word2vec.c's `g` before the learning rate."""
    if labels is None:
        labels = _positive_first(scores)
    return (labels - torch.sigmoid(scores)) * valid
