"""Output layers: which output rows a training example scores, with which labels and mask.

Negative sampling scores the positive word and K noise words (labels 1, 0, ..., 0); hierarchical
softmax scores the inner nodes on the positive word's Huffman path (labels 1 - code). Both feed the
same binary logistic loss and the same batched update in `w2v/model.py`."""
from __future__ import annotations

import torch
from torch import nn

from .huffman import HuffmanTree, huffman_tree
from .sampled_losses import BinaryObjective, build_objective


class NegativeSamplingHead(nn.Module):
    """One output vector per word; scores the positive word and its noise words.

    With `logit_correction` (a per-word vector: -log q(w) for logQ correction and sampled softmax,
    -log(K q(w)) for NCE) that value is added to every score of word w, positive and noise alike
    (Yi et al. 2019 correct all logits), or to the noise words' only (`correct_positive` False:
    sampled softmax with the samples' normaliser). `objective` turns the scores into the loss
    (`w2v/sampled_losses.py`); `torch_step_reason` names the key that needs the torch step."""

    def __init__(self, logit_correction: torch.Tensor | None = None, objective=None, correct_positive: bool = True,
                 torch_step_reason: str | None = None):
        super().__init__()
        self.register_buffer("correction", logit_correction, persistent=False)
        self.objective = objective or BinaryObjective()
        self.correct_positive = correct_positive
        self.torch_step_reason = torch_step_reason or (
            "model.logq_correction is on" if logit_correction is not None else None)

    @property
    def needs_torch_step(self) -> bool:
        """A kernel backend, which only takes noise ids and scores them with the binary loss, cannot
        apply a correction or another objective."""
        return self.torch_step_reason is not None

    def num_rows(self, vocab_size: int) -> int:
        return vocab_size

    def targets(self, positive: torch.Tensor, negatives: torch.Tensor):
        """Output rows [B, 1+K] (positive first), labels (None: positive first) and the mask of noise
        words that are not the positive."""
        rows = torch.cat([positive.unsqueeze(1), negatives], dim=1)
        valid = torch.ones(rows.shape, dtype=torch.float32, device=rows.device)
        valid[:, 1:] = (negatives != positive.unsqueeze(1)).float()
        return rows, None, valid

    def bias(self, rows: torch.Tensor) -> torch.Tensor | None:
        if self.correction is None:
            return None
        bias = self.correction[rows]
        if not self.correct_positive:
            bias[:, 0] = 0.0
        return bias


class HierarchicalSoftmaxHead(nn.Module):
    """V - 1 output vectors, one per inner node of the Huffman tree (word2vec.c's syn1).

    P(w | h) = prod_d s((1 - 2 code_d) h.v_{point_d}); the loss is the binary logistic loss on
    labels 1 - code_d over the word's path, padded to the longest code with a mask."""

    needs_torch_step = False   # the kernels read the tree (`kernel_tree`) and walk the path per example
    # The root is on every path (and the nodes below it on most), so a batched update gives it the
    # summed gradient of the whole batch, computed from one stale row; at train.batch_size 1024
    # skip-gram diverged. The torch step updates at most this many examples at once, and a GPU
    # launch holds at most this many (word2vec.c updates one pair at a time).
    max_batch = 64

    objective = BinaryObjective()
    torch_step_reason = None

    def __init__(self, tree: HuffmanTree):
        super().__init__()
        # int32 like the word ids: the kernels read these very tensors, and torch's gathers take them.
        self.register_buffer("points", torch.from_numpy(tree.points.astype("int32")), persistent=False)
        self.register_buffer("labels", torch.from_numpy(1.0 - tree.codes.astype("float32")), persistent=False)
        self.register_buffer("lengths", torch.from_numpy(tree.lengths.astype("int32")), persistent=False)
        depth = torch.arange(tree.codes.shape[1])
        self.register_buffer("mask", (depth < self.lengths.unsqueeze(1)).float(), persistent=False)

    def kernel_tree(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(points [V, L] int32, labels [V, L] float32, lengths [V] int32) for the fused kernels,
        which gather each example's path from its positive id."""
        return self.points, self.labels, self.lengths

    def num_rows(self, vocab_size: int) -> int:
        return vocab_size - 1

    def targets(self, positive: torch.Tensor, negatives: torch.Tensor):
        """Inner nodes [B, L] on each positive word's path, their labels and the padding mask;
        `negatives` is not used (hierarchical softmax draws no noise words)."""
        return self.points[positive], self.labels[positive], self.mask[positive]

    def bias(self, rows: torch.Tensor) -> None:
        return None


def build_head(m, counts, logit_correction: torch.Tensor | None = None) -> nn.Module:
    """The output layer that `model.loss` (a ModelConfig) asks for; `counts` in vocabulary order;
    `logit_correction` from `samplers.logit_correction` (which knows NCE's and sampled softmax's)."""
    if m.loss == "hs":
        return HierarchicalSoftmaxHead(huffman_tree(counts))
    reason = {"nce": "model.loss: nce corrects every logit by -log(K q(w))",
              "sampled_softmax": "model.loss: sampled_softmax is a softmax, not the kernels' binary loss"}.get(m.loss)
    return NegativeSamplingHead(logit_correction, build_objective(m),
                                correct_positive=not (m.loss == "sampled_softmax" and m.softmax_normaliser == "samples"),
                                torch_step_reason=reason)
