"""Negative-sampling strategies: how the K noise words of each example are picked.

Every sampler returns a [N, K] tensor of word ids for a chunk's N examples (`draw`), drawn on the
training device, so the update code (and any fused kernel that takes noise ids) stays one path.
DNS, rejection and MH sampling (`w2v/mcmc.py`) also look at the current vectors: they draw
candidates per chunk and pick the K noise words per batch (`refine`), just before that batch's
update; the neighbour sampler (`w2v/neighbours.py`) rebuilds its pools before a chunk (`prepare`).
`probabilities()` is the distribution a noise word comes from, where one is defined: logQ
correction, NCE and sampled softmax subtract its log from the logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SAMPLERS, ConfigError
from .noise import NoiseSampler
from .subsample import keep_probabilities


class NegativeSampler(nn.Module):
    """Interface: `draw(targets, generator)` -> [N, K] noise ids for examples whose positive
    (output-side) words are `targets` [N]; a noise id equal to the positive is masked by the model."""

    refines_batches = False  # True: `refine` must run on every batch before its update
    key = ""                 # model.sampler's value, for messages

    def prepare(self, model, chunk: int) -> None:
        """Called before chunk `chunk`'s noise words are drawn (chunk 0: an epoch starts)."""

    def stats(self) -> dict:
        """Counters since the last call (an epoch's): acceptance rates, pool costs; for the metrics."""
        return {}

    def draw(self, targets: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def refine(self, model, batch: tuple, generator: torch.Generator) -> tuple:
        """The batch as `Examples.batch` returns it, noise ids last; most samplers leave it as is."""
        return batch

    def probabilities(self) -> torch.Tensor | None:
        """q(w), the probability that a noise word is w, or None where none is defined."""
        return None


class UnigramSampler(NegativeSampler):
    """PNS: count ** exponent (word2vec 0.75, fastText 0.5; 0 is uniform, 1 pure popularity)."""

    def __init__(self, counts: torch.Tensor, exponent: float, k: int):
        super().__init__()
        self.noise, self.k = NoiseSampler(counts, exponent), k

    def draw(self, targets, generator):
        return self.noise(targets.shape[0], self.k, generator)

    def probabilities(self):
        return self.noise.weights


class UniformSampler(NegativeSampler):
    """RNS: every word equally likely (one `randint`, cheaper than multinomial over V weights)."""

    def __init__(self, vocab_size: int, k: int):
        super().__init__()
        self.vocab_size, self.k = vocab_size, k
        self.register_buffer("q", torch.full((vocab_size,), 1.0 / vocab_size), persistent=False)

    def draw(self, targets, generator):
        return torch.randint(0, self.vocab_size, (targets.shape[0], self.k), generator=generator,
                             device=targets.device)

    def probabilities(self):
        return self.q


class SharedSampler(UnigramSampler):
    """One unigram draw of K noise words for each group of `group` consecutive examples.

    Examples are windows when `model.shared_negatives` is on (skip-gram default), pairs when it is
    off, centre words for CBOW; so with shared negatives one draw serves `group` windows."""

    def __init__(self, counts: torch.Tensor, exponent: float, k: int, group: int):
        super().__init__(counts, exponent, k)
        self.group = group

    def draw(self, targets, generator):
        n = targets.shape[0]
        draws = self.noise(-(-n // self.group), self.k, generator)
        return draws.repeat_interleave(self.group, dim=0)[:n]


class InBatchSampler(NegativeSampler):
    """The positive words of K other examples of the same batch of `batch_size` examples.

    Example i of a batch of size S takes the positives of examples (i + r) mod S, r uniform in
    1..S-1: never its own example. Another example may have the same positive word (frequent
    words do); the model masks such noise words, as it masks any noise word equal to the positive.
    A noise word is then a positive word: q(w) = count(w) * keep(w) / sum (subsampled unigram)."""

    def __init__(self, k: int, batch_size: int, counts: torch.Tensor, keep_prob: torch.Tensor):
        super().__init__()
        self.k, self.batch_size = k, batch_size
        q = counts.to(torch.float64) * keep_prob.to(torch.float64)
        self.register_buffer("q", (q / q.sum()).to(torch.float32), persistent=False)

    def draw(self, targets, generator):
        n, device = targets.shape[0], targets.device
        i = torch.arange(n, device=device)
        start = torch.div(i, self.batch_size, rounding_mode="floor") * self.batch_size
        size = (n - start).clamp(max=self.batch_size)          # the last batch may be short
        u = torch.rand((n, self.k), generator=generator, device=device)
        # r uniform in 1..size-1 (the minimum guards float rounding of u * (size - 1) up to size - 1);
        # a batch of one has no other example: r = 0 gives its own word, which the model masks.
        r = torch.minimum((u * (size - 1).unsqueeze(1)).long(), (size - 2).unsqueeze(1)) + 1
        other = start.unsqueeze(1) + ((i - start).unsqueeze(1) + r) % size.unsqueeze(1)
        return targets[other]

    def probabilities(self):
        return self.q


class MixedSampler(NegativeSampler):
    """MNS (Yang et al. 2020): K in-batch noise words followed by K unigram draws; q is the mixture."""

    def __init__(self, in_batch: InBatchSampler, unigram: UnigramSampler):
        super().__init__()
        self.in_batch, self.unigram = in_batch, unigram

    def draw(self, targets, generator):
        return torch.cat([self.in_batch.draw(targets, generator), self.unigram.draw(targets, generator)], dim=1)

    def probabilities(self):
        kb, ku = self.in_batch.k, self.unigram.k
        return (kb * self.in_batch.probabilities() + ku * self.unigram.probabilities()) / (kb + ku)


class DynamicSampler(NegativeSampler):
    """DNS (Zhang et al. 2013): M unigram candidates per example, scored with the current vectors
    just before the batch's update; keep the K highest-scoring (or, with `softmax`, draw K without
    replacement from the softmax of the scores). Scoring is per batch, not per chunk: the vectors a
    chunk would use are up to a whole chunk of updates old, and [chunk, M, dim] gathered rows would
    not fit in cache."""

    refines_batches = True
    key = "dns"

    def __init__(self, counts: torch.Tensor, exponent: float, k: int, candidates: int, softmax: bool):
        super().__init__()
        self.candidates = UnigramSampler(counts, exponent, candidates)
        self.k, self.softmax = k, softmax

    def draw(self, targets, generator):
        return self.candidates.draw(targets, generator)

    @torch.no_grad()
    def refine(self, model, batch, generator):
        *head, cand = batch
        positive, hidden, scores = candidate_scores(model, head, cand)                   # [B, M]
        # A candidate equal to the positive would be masked anyway; never prefer it.
        scores = scores.masked_fill(cand == positive.unsqueeze(1), -1e9)
        if self.softmax:
            # K draws without replacement from softmax(scores): the top K of scores + Gumbel noise.
            # (With replacement, a peaked softmax repeats one candidate K times, and the summed
            # update of a batch diverged on the benchmark corpus.)
            u = torch.rand(scores.shape, generator=generator, device=scores.device).clamp_(min=1e-20)
            scores = scores - torch.log(-torch.log(u))
        pick = scores.topk(self.k, dim=1).indices
        return (*head, cand.gather(1, pick))


def candidate_scores(model, head: tuple, cand: torch.Tensor):
    """(positive [B], hidden [B, D], scores [B, ...]) of candidate noise ids `cand` [B, ...] for a
    batch whose noise ids are left out (`head`): the logit the model would give each candidate,
    with the hidden vector the model itself computes."""
    positive, hidden = model.positive_and_hidden(*head)
    rows = F.embedding(cand.reshape(cand.shape[0], -1), model.out_embed.weight)
    return positive, hidden, (rows * hidden.unsqueeze(1)).sum(2).view(cand.shape)


class TwoGroupSampler(NegativeSampler):
    """Two-group weighted sampling: words of count >= `threshold` from count ** exponent within
    their group, the rarer words uniformly, the frequent group picked with probability `mix`
    (0: by the groups' sizes, |frequent| / V). One multinomial over the mixture q."""

    def __init__(self, counts: torch.Tensor, exponent: float, k: int, threshold: int, mix: float):
        super().__init__()
        counts = counts.to(torch.float64)
        frequent = counts >= threshold
        n_freq, n = int(frequent.sum()), len(counts)
        mix = (mix or n_freq / n) if 0 < n_freq < n else float(n_freq == n)
        power = torch.where(frequent, counts.pow(exponent), torch.zeros_like(counts))
        rare = (~frequent).to(torch.float64)
        q = mix * power / power.sum().clamp(min=1e-300) + (1 - mix) * rare / rare.sum().clamp(min=1)
        self.noise, self.k, self.mix = NoiseSampler(q, 1.0), k, mix

    def draw(self, targets, generator):
        return self.noise(targets.shape[0], self.k, generator)

    def probabilities(self):
        return self.noise.weights


class SubsampledNegatives(NegativeSampler):
    """`model.negative_subsample`: each noise word w another sampler draws is discarded with
    probability 1 - keep(w), word2vec's subsampling formula with this threshold on the noise side.
    Discarded means masked: the slot is set to the example's positive word, which every backend
    skips (so an example has fewer than K noise words, never a redrawn one). For a sampler that
    picks per batch the discard follows its pick."""

    def __init__(self, inner: NegativeSampler, keep: torch.Tensor):
        super().__init__()
        self.inner = inner
        self.register_buffer("keep", keep.to(torch.float32), persistent=False)
        self.refines_batches, self.key = inner.refines_batches, inner.key

    def discard(self, ids: torch.Tensor, positive: torch.Tensor, generator) -> torch.Tensor:
        drop = torch.rand(ids.shape, generator=generator, device=ids.device) >= self.keep[ids.long()]
        return torch.where(drop, positive.unsqueeze(1).to(ids.dtype), ids)

    def draw(self, targets, generator):
        ids = self.inner.draw(targets, generator)
        return ids if self.refines_batches else self.discard(ids, targets, generator)

    def refine(self, model, batch, generator):
        *head, noise = self.inner.refine(model, batch, generator)
        positive, _ = model.positive_and_hidden(*head)
        return (*head, self.discard(noise, positive, generator))

    def prepare(self, model, chunk):
        self.inner.prepare(model, chunk)

    def stats(self):
        return self.inner.stats()

    def probabilities(self):
        q = self.inner.probabilities()
        if q is None:
            return None
        kept = q.to(torch.float64) * self.keep.to(torch.float64)
        return (kept / kept.sum()).to(torch.float32)


class NoNegatives(NegativeSampler):
    """Hierarchical softmax scores tree nodes, not noise words: an empty [N, 0] draw."""

    def draw(self, targets, generator):
        return targets.new_empty((targets.shape[0], 0))


def build_sampler(m, counts: torch.Tensor, keep_prob: torch.Tensor, batch_size: int) -> NegativeSampler:
    """The sampler that `model.*` (a ModelConfig) asks for, with `model.negative_subsample` on top."""
    if m.loss == "hs":
        return NoNegatives()
    sampler = _base_sampler(m, counts, keep_prob, batch_size)
    if m.negative_subsample > 0:
        sampler = SubsampledNegatives(sampler, keep_probabilities(counts, m.negative_subsample))
    return sampler


def _base_sampler(m, counts, keep_prob, batch_size) -> NegativeSampler:
    from .mcmc import MetropolisSampler, RejectionSampler
    from .neighbours import NeighbourSampler
    k = m.negative
    if m.sampler == "unigram":
        return UnigramSampler(counts, m.ns_exponent, k)
    if m.sampler == "uniform":
        return UniformSampler(len(counts), k)
    if m.sampler == "shared":
        return SharedSampler(counts, m.ns_exponent, k, m.shared_group)
    if m.sampler == "dns":
        return DynamicSampler(counts, m.ns_exponent, k, m.dns_candidates, m.dns_softmax)
    in_batch = InBatchSampler(k, batch_size, counts, keep_prob)
    if m.sampler == "in_batch":
        return in_batch
    if m.sampler == "mixed":
        return MixedSampler(in_batch, UnigramSampler(counts, m.ns_exponent, k))
    if m.sampler == "two_group":
        return TwoGroupSampler(counts, m.ns_exponent, k, m.two_group_threshold, m.two_group_mix)
    if m.sampler == "rejection":
        return RejectionSampler(counts, m.ns_exponent, k, m.target_beta, m.rejection_rounds)
    if m.sampler == "mh":
        return MetropolisSampler(counts, m.ns_exponent, k, m.target_beta, m.mh_chain, m.mh_burn_in)
    if m.sampler == "neighbours":
        if m.neighbour_to >= len(counts):
            raise ConfigError(f"'model.neighbour_to' must be below the vocabulary size ({len(counts):,} words: "
                              f"a word has that many minus one neighbours), got {m.neighbour_to}")
        return NeighbourSampler(counts, m.ns_exponent, k, m.hard_negatives, m.neighbour_from, m.neighbour_to,
                                m.neighbour_refresh_chunks)
    raise ValueError(f"unknown model.sampler {m.sampler!r}; expected one of {', '.join(SAMPLERS)}")


def noise_per_example(m) -> int:
    """The noise words an example scores: K, or 2K for `mixed` (K in-batch + K unigram)."""
    return m.negative * (2 if m.sampler == "mixed" else 1)


def logit_correction(m, sampler: NegativeSampler) -> torch.Tensor | None:
    """Per word, what the head adds to its logits: -log q(w) with `model.logq_correction` or
    `model.loss: sampled_softmax`, -log(K q(w)) with `model.loss: nce` (Mnih & Teh 2012); else None."""
    if not (m.logq_correction or m.loss in ("nce", "sampled_softmax")):
        return None
    q = sampler.probabilities().to(torch.float64)
    if m.loss == "nce":
        q = q * noise_per_example(m)
    return -torch.log(q.clamp(min=1e-30)).to(torch.float32)
