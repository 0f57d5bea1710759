"""The objectives an example's scores go into: the binary logistic loss (negative sampling, NCE,
hierarchical softmax) or a sampled softmax, each with its gradient -d loss / d score."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .loss import negative_sampling_loss, score_gradient


class BinaryObjective:
    """-sum_j valid_j log s(sign_j score_j): negative sampling and hierarchical softmax as they
    are, NCE once the head has added -log(K q(w)) to the logits (Mnih & Teh 2012)."""

    def loss(self, scores, valid, labels=None):
        return negative_sampling_loss(scores, valid, labels)

    def gradient(self, scores, valid, labels=None):
        return score_gradient(scores, valid, labels)


NEG_INF = -1e30   # a masked logit: exp() of it is 0 in float32, and 0 * it stays finite


class SampledSoftmax:
    """Softmax cross-entropy over the positive (column 0) and the K noise words of each row.

    `normaliser: joint` (sampled softmax): every logit has had -log q(w) added by the head, and the
    partition function is that of the positive and the samples, loss -s0 + log sum_j exp(s_j).
    `normaliser: samples` (Bengio & Senecal 2003, biased importance sampling): the positive's logit
    is left as it is and log Z is estimated from the samples alone, Z_hat = (1/K) sum_k exp(s_k) / q(k)
    (an unbiased estimate of Z; `partition_estimate`), loss -s0 + log Z_hat; its gradient weights
    the noise words by exp(s_k) / q(k) / sum (the self-normalised importance-sampling estimate of
    E_p[d s / d theta]). With `joint` a noise word equal to the positive (masked by the head) leaves
    the sum, as TensorFlow's remove_accidental_hits; with `samples` it stays, since Z_hat estimates
    a sum over every word. A padding row (no valid positive) contributes nothing."""

    def __init__(self, normaliser: str = "joint"):
        self.joint = normaliser == "joint"

    def _parts(self, scores, valid):
        live = valid > 0
        rows_ok = live[:, 0]        # a padding row (no positive) contributes nothing
        if self.joint:              # a noise word equal to the positive is an accidental hit: left out
            return scores.masked_fill(~live, NEG_INF), rows_ok, 0.0
        # Z_hat is a sum over all words, the positive included: every sample counts, accidental hits too.
        logits = scores.clone()
        logits[:, 0] = NEG_INF
        return logits, rows_ok, math.log(scores.shape[1] - 1)

    def loss(self, scores, valid, labels=None):
        logits, rows_ok, log_k = self._parts(scores, valid)
        per_row = torch.logsumexp(logits, dim=1) - log_k - scores[:, 0]
        return torch.where(rows_ok, per_row, torch.zeros_like(per_row))

    def gradient(self, scores, valid, labels=None):
        logits, rows_ok, _ = self._parts(scores, valid)
        g = -F.softmax(logits, dim=1)
        g[:, 0] += 1.0
        return g * rows_ok.unsqueeze(1).to(g.dtype)


def partition_estimate(noise_scores: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Z_hat = (1/K) sum_k exp(s_k - log q(k)) per row of [N, K] scores: E[Z_hat] = sum_w exp(s_w)."""
    return torch.exp(noise_scores - log_q).mean(dim=1)


def build_objective(m):
    """The objective `model.loss` (a ModelConfig) asks for."""
    if m.loss == "sampled_softmax":
        return SampledSoftmax(m.softmax_normaliser)
    return BinaryObjective()
