"""Skip-gram and CBOW: two sparse embedding tables, an autograd loss and a batched SGD step.

The output layer (negative sampling or hierarchical softmax, `w2v/heads.py`) only decides which
output rows each example scores, with which labels; the update below is the same for both.

With subwords (fastText's model, `w2v/subwords.py`) the input table holds V word rows and then the
n-gram buckets; a word's input vector is the mean of its own row and its n-gram rows, and the
gradient of that vector goes in full to each of those rows (fastText's Model::update divides it
by the number of input rows only for supervised models; gensim's FastText does the same)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .heads import NegativeSamplingHead
from .mode import Mode
from .subwords import SubwordIndex, mean_rows


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


class Bags(NamedTuple):
    """The input rows of a tensor of word ids under subwords, each distinct word once (a batch
    repeats its frequent words: gathering and scattering their rows once per batch touches about
    40% fewer rows on the benchmark's subsampled batches, and adds up the same gradients): `inverse` [N], the place of each of ids.reshape(-1) among
    the distinct words; `rows` [nnz] (int64), their rows word after word; `bag` [nnz], the
    distinct word each row belongs to; `counts` [U], rows per distinct word."""
    inverse: torch.Tensor
    rows: torch.Tensor
    bag: torch.Tensor
    counts: torch.Tensor


class Word2VecModel(nn.Module):
    """Input vectors uniform in +-0.5/dim, output vectors zero, as word2vec.c initialises them;
    with `subwords` (a SubwordIndex) the input table has its `n_rows` rows, all uniform in
    +-1/dim, as fastText initialises its input matrix.

    `head` picks the output layer (default: negative sampling); its `num_rows` sizes the output table.
    Each subclass is one training `Mode` (its `mode`); `sgd_step` takes a batch as
    `Examples.batch` gives it for that mode."""

    mode: Mode

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator | None = None, head=None,
                 subwords: SubwordIndex | None = None):
        super().__init__()
        self.head = head if head is not None else NegativeSamplingHead()
        self.vocab_size = vocab_size
        n_in = vocab_size if subwords is None else subwords.n_rows
        # _weight skips nn.Embedding's own normal_ init; the tables are filled below.
        self.in_embed = nn.Embedding(n_in, dim, sparse=True, _weight=torch.empty(n_in, dim))
        rows = self.head.num_rows(vocab_size)
        self.out_embed = nn.Embedding(rows, dim, sparse=True, _weight=torch.zeros(rows, dim))
        # Per input row, the factor its updates are scaled by (gensim's vectors_lockf); None: all 1.
        self.register_buffer("lock", None, persistent=False)
        # The CSR of each word's input rows (subwords.py), on the model's device; rebuilt from the
        # vocabulary, so not part of the state dict.
        self.register_buffer("sub_offsets", None if subwords is None else subwords.offsets, persistent=False)
        self.register_buffer("sub_rows", None if subwords is None else subwords.rows, persistent=False)
        half_width = 0.5 / dim if subwords is None else 1.0 / dim
        with torch.no_grad():
            # Drawn on the generator's device (a CUDA generator for a GPU run) in blocks of rows, so
            # the temporaries stay small next to the table (a whole-table draw doubled peak memory).
            device = generator.device if generator is not None else "cpu"
            w = self.in_embed.weight
            for a in range(0, n_in, INIT_BLOCK_ROWS):
                b = min(a + INIT_BLOCK_ROWS, n_in)
                block = torch.rand(b - a, dim, generator=generator, dtype=torch.float32, device=device)
                w[a:b] = block.sub_(0.5).mul_(2 * half_width)

    @property
    def subwords(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(offsets int64 [V+1], rows int32 [nnz]) on the model's device, or None for a word model:
        word w's input vector is the mean of in_embed rows rows[offsets[w]:offsets[w+1]]."""
        return None if self.sub_rows is None else (self.sub_offsets, self.sub_rows)

    def bags(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> Bags:
        """The input rows of the word ids `ids` (any shape) under subwords; ids that `mask` leaves
        out (window padding) count as word 0, so that they add no distinct word."""
        if mask is not None:
            ids = torch.where(mask, ids, torch.zeros((), dtype=ids.dtype, device=ids.device))
        words, inverse = torch.unique(ids.reshape(-1), return_inverse=True)
        words = words.long()
        start = self.sub_offsets[words]
        counts = self.sub_offsets[words + 1] - start
        ends = counts.cumsum(0)
        nnz = int(ends[-1]) if len(ends) else 0  # the host needs the size (one sync per batch on CUDA)
        bag = torch.repeat_interleave(counts, output_size=nnz)
        pos = torch.arange(nnz, device=words.device) - (ends - counts)[bag] + start[bag]
        return Bags(inverse, self.sub_rows[pos].long(), bag, counts)

    def input_sums(self, ids: torch.Tensor, mask: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, Bags | None]:
        """(sums [*ids.shape, D], counts [*ids.shape] float, bags): per word id the sum of its input
        rows and how many there are (a word model: its row and 1; masked ids: 0 and 0). Read from
        in_embed's weight, so autograd-tracked outside no_grad (`forward`)."""
        w = self.in_embed.weight
        m = None if mask is None else mask.to(w.dtype)
        if self.sub_rows is None:
            vectors = F.embedding(ids, w)
            if m is None:
                return vectors, torch.ones(ids.shape, dtype=w.dtype, device=w.device), None
            return vectors * m.unsqueeze(-1), m, None
        b = self.bags(ids, mask)
        sums = F.embedding_bag(b.rows, w, b.counts.cumsum(0) - b.counts, mode="sum")[b.inverse]
        counts = b.counts.to(w.dtype)[b.inverse]
        if m is not None:
            sums, counts = sums * m.reshape(-1, 1), counts * m.reshape(-1)
        return sums.view(*ids.shape, w.shape[1]), counts.view(ids.shape), b

    def input_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """Input vectors [*ids.shape, D] of word ids: a word's row, or the mean of its subword rows."""
        return self._input_vectors_and_bags(ids)[0]

    @torch.no_grad()
    def word_vectors(self) -> torch.Tensor:
        """The vectors [V, D] of the vocabulary's words: the input table itself for a word model
        (no copy), with subwords each word's mean over its rows (what fastText's .vec holds)."""
        if self.sub_rows is None:
            return self.in_embed.weight
        return mean_rows(self.in_embed.weight, self.sub_offsets, self.sub_rows)

    def _input_vectors_and_bags(self, ids: torch.Tensor, mask: torch.Tensor | None = None
                                ) -> tuple[torch.Tensor, Bags | None]:
        """Input vectors [*ids.shape, D] and the bags to scatter their gradients with: the rows
        themselves for a word model (mask not applied: the caller masks the gradients), the means
        of the subword rows otherwise (masked ids: zero vectors, no rows)."""
        if self.sub_rows is None:
            return F.embedding(ids, self.in_embed.weight), None
        sums, counts, bags = self.input_sums(ids, mask)
        return sums / counts.clamp(min=1).unsqueeze(-1), bags

    def input_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Every input-table row the word ids `ids` read and update (the ids themselves for a word model)."""
        return ids.reshape(-1) if self.sub_rows is None else self.bags(ids).rows

    def add_input_grads(self, ids: torch.Tensor, grads: torch.Tensor, mask: torch.Tensor | None,
                        bags: Bags | None) -> None:
        """in_embed[row] += grads[i] (scaled by the row's lock) for each input row of ids[i] where
        mask[i]; `bags` is what input_sums returned for these ids (None for a word model)."""
        in_w = self.in_embed.weight
        if bags is None:
            if mask is None:
                in_w.index_add_(0, ids.reshape(-1), self._locked(ids, grads).reshape(-1, in_w.shape[1]))
            else:
                scatter_rows(in_w, ids, self._locked(ids, grads), mask)
            return
        g = grads.reshape(-1, in_w.shape[1])
        if mask is not None:
            g = g * mask.reshape(-1, 1).to(g.dtype)
        per_word = g.new_zeros(len(bags.counts), g.shape[1]).index_add_(0, bags.inverse, g)
        # Summing per distinct row too was slower on the CPU: index_add_ costs as much into a small
        # buffer as into the table (measured).
        rows_g = per_word.index_select(0, bags.bag)
        in_w.index_add_(0, bags.rows, self._locked(bags.rows, rows_g))

    @property
    def needs_torch_step(self) -> bool:
        """True when the output layer needs this module's update (logQ, NCE, sampled softmax) or
        input rows are locked, so a backend that only consumes noise ids must fall back to it."""
        return self.head.needs_torch_step or self.lock is not None

    def set_lock(self, lock: torch.Tensor | None) -> None:
        """Scale each input row's updates by lock[row] (0 keeps the row fixed); None unlocks all.
        A lock of V factors on a subword model leaves the n-gram rows free (factor 1)."""
        if lock is not None:
            lock = lock.to(self.in_embed.weight.device, torch.float32)
            extra = self.in_embed.weight.shape[0] - lock.shape[0]
            if extra > 0:
                lock = torch.cat([lock, lock.new_ones(extra)])
        self.lock = lock

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
        return centre, self.input_vectors(context)

    def forward(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Per-pair loss through autograd: the reference the batched step is tested against."""
        targets, labels, valid = self._targets(centre, negatives)
        hidden = self.input_vectors(context)
        scores = self._scores(torch.bmm(self.out_embed(targets), hidden.unsqueeze(2)).squeeze(2), targets)
        return self.head.objective.loss(scores, valid, labels)

    @torch.no_grad()
    def sgd_step(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor, lr: float
                 ) -> torch.Tensor:
        """One batched SGD update (gather, dot, sigmoid, gradient, index_add_); returns the loss sum."""
        targets, labels, valid = self._targets(centre, negatives)
        hidden, bags = self._input_vectors_and_bags(context)
        loss, grad_h = self._apply_update(hidden, targets, labels, valid, lr)
        self.add_input_grads(context, grad_h, None, bags)
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
        return centre, (self.input_vectors(contexts) * m).sum(1) / m.sum(1).clamp(min=1)

    def forward(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        """Per-window loss through autograd (reference for `sgd_step`)."""
        targets, labels, valid = self._targets(centre, negatives)
        scores = torch.bmm(self.input_vectors(contexts), self.out_embed(targets).transpose(1, 2))  # [B, C, 1+K]
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
        out_w = self.out_embed.weight
        hidden, bags = self._input_vectors_and_bags(contexts, ctx_mask)  # [B, C, D]
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
        self.add_input_grads(contexts, grad_h, ctx_mask, bags)
        return loss


class CBOW(Word2VecModel):
    """Predict the centre word from the mean (or sum) of its context's input vectors."""

    mode = Mode.CBOW

    def __init__(self, vocab_size: int, dim: int, generator: torch.Generator | None = None, mean: bool = True,
                 head=None, subwords: SubwordIndex | None = None):
        super().__init__(vocab_size, dim, generator, head, subwords)
        self.mean = mean

    def _hidden(self, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """The mean (or sum) of all the context's input rows, from the per-word row sums [B, C, D]
        and row counts [B, C] (masked words: 0). For a word model that is the mean of the context
        vectors; with subwords, fastText's bag of all the context words' rows pooled together
        (a word of many n-grams weighs more), as fastText's and gensim's CBOW do."""
        h = sums.sum(dim=1)
        if self.mean:
            h = h / counts.sum(dim=1, keepdim=True).clamp(min=1)
        return h

    def positive_and_hidden(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The hidden vector this model scores with: the mean or the sum of the context vectors."""
        sums, counts, _ = self.input_sums(contexts, ctx_mask)
        return centre, self._hidden(sums, counts)

    def forward(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        """Per-example loss through autograd (reference for `sgd_step`)."""
        targets, labels, valid = self._targets(centre, negatives)
        hidden = self._hidden(*self.input_sums(contexts, ctx_mask)[:2])
        scores = self._scores(torch.bmm(self.out_embed(targets), hidden.unsqueeze(2)).squeeze(2), targets)
        return self.head.objective.loss(scores, valid, labels)

    @torch.no_grad()
    def sgd_step(self, contexts: torch.Tensor, ctx_mask: torch.Tensor, centre: torch.Tensor,
                 negatives: torch.Tensor, lr: float) -> torch.Tensor:
        """Batched update. Each context word receives the gradient of the hidden vector h; with the mean,
        that is d loss/d h times 1/count in exact calculus, but word2vec.c and gensim add the full
        gradient to every context word, and so do we (see README, "Differences"); with subwords,
        every row of every context word gets it, as fastText and gensim do."""
        targets, labels, valid = self._targets(centre, negatives)
        sums, counts, bags = self.input_sums(contexts, ctx_mask)
        hidden = self._hidden(sums, counts)
        loss, grad_h = self._apply_update(hidden, targets, labels, valid, lr)
        if not self.mean:
            # gensim divides the summed-context gradient by the number of rows summed (word2vec.c
            # has no sum mode).
            grad_h = grad_h / counts.sum(dim=1, keepdim=True).clamp(min=1)
        self.add_input_grads(contexts, grad_h.unsqueeze(1).expand(-1, contexts.shape[1], -1), ctx_mask, bags)
        return loss
