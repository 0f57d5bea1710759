"""Skip-gram and CBOW: two sparse embedding tables, an autograd loss and a batched SGD step.

The output layer (negative sampling or hierarchical softmax, `w2v/heads.py`) only decides which
output rows each example scores, with which labels; the update below is the same for both."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads import NegativeSamplingHead
from .mode import Mode


def scatter_rows(table: torch.Tensor, rows: torch.Tensor, grads: torch.Tensor, mask: torch.Tensor,
                 sync_free: bool | None = None) -> None:
    """table[rows[i]] += grads[i] where mask[i]. On the CPU only the masked rows are scattered
    (padding is ~45% of a window matrix); on CUDA, boolean indexing would make the host wait for
    the device every batch, so the padded rows are added with a zero gradient instead."""
    if sync_free is None:
        sync_free = table.is_cuda
    if sync_free:
        table.index_add_(0, rows.reshape(-1), (grads * mask.unsqueeze(-1)).reshape(-1, table.shape[1]))
    else:
        table.index_add_(0, rows[mask], grads[mask])


INIT_BLOCK_ROWS = 1 << 13


class Word2VecModel(nn.Module):
    """Input vectors uniform in +-0.5/dim, output vectors zero, as word2vec.c initialises them.

    `head` picks the output layer (default: negative sampling); its `num_rows` sizes the output table.
    Each subclass is one training `Mode` (its `mode`); `sgd_step` takes a batch as
    `Examples.batch` gives it for that mode."""

    mode: Mode

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator | None = None, head=None):
        super().__init__()
        self.head = head if head is not None else NegativeSamplingHead()
        # _weight skips nn.Embedding's own normal_ init; the tables are filled below.
        self.in_embed = nn.Embedding(vocab_size, dim, sparse=True, _weight=torch.empty(vocab_size, dim))
        rows = self.head.num_rows(vocab_size)
        self.out_embed = nn.Embedding(rows, dim, sparse=True, _weight=torch.zeros(rows, dim))
        # Per input row, the factor its updates are scaled by (gensim's vectors_lockf); None: all 1.
        self.register_buffer("lock", None, persistent=False)
        with torch.no_grad():
            # Drawn on the generator's device (a CUDA generator for a GPU run) in blocks of rows, so
            # the temporaries stay small next to the table (a whole-table draw doubled peak memory).
            device = generator.device if generator is not None else "cpu"
            w = self.in_embed.weight
            for a in range(0, vocab_size, INIT_BLOCK_ROWS):
                b = min(a + INIT_BLOCK_ROWS, vocab_size)
                block = torch.rand(b - a, dim, generator=generator, dtype=torch.float32, device=device)
                w[a:b] = block.sub_(0.5).div_(dim)

    @property
    def needs_torch_step(self) -> bool:
        """True when the output layer needs this module's update (logQ, NCE, sampled softmax) or
        input rows are locked, so a backend that only consumes noise ids must fall back to it."""
        return self.head.needs_torch_step or self.lock is not None

    def set_lock(self, lock: torch.Tensor | None) -> None:
        """Scale each input row's updates by lock[row] (0 keeps the row fixed); None unlocks all."""
        self.lock = None if lock is None else lock.to(self.in_embed.weight.device, torch.float32)

    def _locked(self, rows: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """The input-row gradients `grads` [..., D] of `rows` [...], scaled by the rows' lock factors."""
        return grads if self.lock is None else grads * self.lock[rows].unsqueeze(-1)

    def _targets(self, positive: torch.Tensor, negatives: torch.Tensor):
        """Output rows [B, T], labels ([B, T], or None for positive-first) and mask, from the head."""
        return self.head.targets(positive, negatives)

    def _scores(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Add the head's per-row logit correction (logQ), if any, to scores [B, T] or [B, C, T]."""
        bias = self.head.bias(targets)
        if bias is None:
            return scores
        return scores + (bias if scores.dim() == 2 else bias.unsqueeze(1))

    def _apply_update(self, hidden: torch.Tensor, targets: torch.Tensor, labels, valid: torch.Tensor, lr: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores, output-row update and hidden-vector gradient for a batch; returns (loss sum, grad_h).

        The same arithmetic as autograd on `negative_sampling_loss` followed by plain SGD: both
        gradients use the tables as they were before the step (tested against autograd)."""
        out_w = self.out_embed.weight
        # F.embedding gathers rows several times faster than advanced indexing on CPU, and the
        # broadcast multiply-sum beats bmm for these thin [1+K, D] x [D] products.
        out_rows = F.embedding(targets, out_w)                      # [B, 1+K, D]
        scores = self._scores((out_rows * hidden.unsqueeze(1)).sum(dim=2), targets)  # [B, 1+K]
        loss = self.head.objective.loss(scores, valid, labels).sum()
        g = self.head.objective.gradient(scores, valid, labels).mul_(lr)          # [B, 1+K]
        grad_h = torch.bmm(g.unsqueeze(1), out_rows).squeeze(1)     # [B, D]
        out_w.index_add_(0, targets.reshape(-1), (g.unsqueeze(2) * hidden.unsqueeze(1)).reshape(-1, out_w.shape[1]))
        return loss, grad_h


class SkipGram(Word2VecModel):
    """Predict each centre word from one context word (word2vec.c: syn0[context] -> syn1neg[centre])."""

    mode = Mode.SG_PAIR

    def positive_and_hidden(self, centre: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The positive ids [B] and the vectors [B, D] a batch (noise ids left out) scores output rows with."""
        return centre, F.embedding(context, self.in_embed.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Per-pair loss through autograd: the reference the batched step is tested against."""
        targets, labels, valid = self._targets(centre, negatives)
        hidden = self.in_embed(context)
        scores = self._scores(torch.bmm(self.out_embed(targets), hidden.unsqueeze(2)).squeeze(2), targets)
        return self.head.objective.loss(scores, valid, labels)

    @torch.no_grad()
    def sgd_step(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor, lr: float
                 ) -> torch.Tensor:
        """One batched SGD update (gather, dot, sigmoid, gradient, index_add_); returns the loss sum."""
        targets, labels, valid = self._targets(centre, negatives)
        in_w = self.in_embed.weight
        loss, grad_h = self._apply_update(F.embedding(context, in_w), targets, labels, valid, lr)
        in_w.index_add_(0, context, self._locked(context, grad_h))
        return loss


class SkipGramSharedNegatives(SkipGram):
    """Skip-gram where the context words of one centre word share its K noise words.

    Same loss as SkipGram, but one draw of K noise words per centre word instead of per
    (centre, context) pair, as Intel's pWord2Vec ("HogBatch") and BlazingText do: the dot
    products become a small matrix product per window and the output rows are gathered and
    scattered once per window instead of once per pair."""

    mode = Mode.SG_WINDOW

    def positive_and_hidden(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each context word is its own hidden vector; one vector for the window, so that one score
        stands for its pairs', is their mean (a candidate's score is then the mean of its pair scores)."""
        m = ctx_mask.unsqueeze(2).to(self.in_embed.weight.dtype)
        return centre, (F.embedding(contexts, self.in_embed.weight) * m).sum(1) / m.sum(1).clamp(min=1)

    def forward(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        """Per-window loss through autograd (reference for `sgd_step`)."""
        targets, labels, valid = self._targets(centre, negatives)
        scores = torch.bmm(self.in_embed(contexts), self.out_embed(targets).transpose(1, 2))  # [B, C, 1+K]
        scores = self._scores(scores, targets)
        pair_valid = ctx_mask.float().unsqueeze(2) * valid.unsqueeze(1)
        T = scores.shape[2]
        pair_labels = None if labels is None else labels.unsqueeze(1).expand_as(scores).reshape(-1, T)
        return self.head.objective.loss(scores.reshape(-1, T), pair_valid.reshape(-1, T),
                                      pair_labels).view(contexts.shape).sum(1)

    @torch.no_grad()
    def sgd_step(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                 negatives: torch.Tensor, lr: float) -> torch.Tensor:
        targets, labels, valid = self._targets(centre, negatives)
        in_w, out_w = self.in_embed.weight, self.out_embed.weight
        hidden = F.embedding(contexts, in_w)                         # [B, C, D]
        out_rows = F.embedding(targets, out_w)                       # [B, 1+K, D]
        scores = self._scores(torch.bmm(hidden, out_rows.transpose(1, 2)), targets)  # [B, C, 1+K]
        pair_valid = ctx_mask.float().unsqueeze(2) * valid.unsqueeze(1)
        T = scores.shape[2]
        flat_scores, flat_valid = scores.reshape(-1, T), pair_valid.view(-1, T)
        flat_labels = None if labels is None else labels.unsqueeze(1).expand_as(scores).reshape(-1, T)
        loss = self.head.objective.loss(flat_scores, flat_valid, flat_labels).sum()
        g = self.head.objective.gradient(flat_scores, flat_valid, flat_labels).mul_(lr).view(scores.shape)
        grad_h = torch.bmm(g, out_rows)                              # [B, C, D]
        grad_o = torch.bmm(g.transpose(1, 2), hidden)                # [B, 1+K, D]
        out_w.index_add_(0, targets.reshape(-1), grad_o.reshape(-1, out_w.shape[1]))
        scatter_rows(in_w, contexts, self._locked(contexts, grad_h), ctx_mask)
        return loss


class CBOW(Word2VecModel):
    """Predict the centre word from the mean (or sum) of its context's input vectors."""

    mode = Mode.CBOW

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator | None = None, mean: bool = True,
                 head=None):
        super().__init__(vocab_size, dim, generator, head)
        self.mean = mean

    def _hidden(self, ctx_vectors: torch.Tensor, ctx_mask: torch.Tensor) -> torch.Tensor:
        h = (ctx_vectors * ctx_mask.unsqueeze(2)).sum(dim=1)
        if self.mean:
            h = h / ctx_mask.sum(dim=1, keepdim=True).clamp(min=1)
        return h

    def positive_and_hidden(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden vector this model scores with: the mean or the sum of the context vectors."""
        return centre, self._hidden(F.embedding(contexts, self.in_embed.weight), ctx_mask.to(self.in_embed.weight.dtype))

    def forward(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        """Per-example loss through autograd (reference for `sgd_step`)."""
        targets, labels, valid = self._targets(centre, negatives)
        hidden = self._hidden(self.in_embed(contexts), ctx_mask.float())
        scores = self._scores(torch.bmm(self.out_embed(targets), hidden.unsqueeze(2)).squeeze(2), targets)
        return self.head.objective.loss(scores, valid, labels)

    @torch.no_grad()
    def sgd_step(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                 negatives: torch.Tensor, lr: float) -> torch.Tensor:
        """Batched update. Each context word receives the gradient of the hidden vector h; with the mean,
        that is d loss/d h times 1/count in exact calculus, but word2vec.c and gensim add the full
        gradient to every context word, and so do we (see README, "Differences")."""
        targets, labels, valid = self._targets(centre, negatives)
        in_w = self.in_embed.weight
        mask = ctx_mask.float()
        hidden = self._hidden(F.embedding(contexts, in_w), mask)
        loss, grad_h = self._apply_update(hidden, targets, labels, valid, lr)
        if not self.mean:
            # gensim divides the summed-context gradient by the context size (word2vec.c has no sum mode).
            grad_h = grad_h / mask.sum(dim=1, keepdim=True).clamp(min=1)
        scatter_rows(in_w, contexts, self._locked(contexts, grad_h.unsqueeze(1).expand(-1, contexts.shape[1], -1)),
                     ctx_mask)
        return loss
