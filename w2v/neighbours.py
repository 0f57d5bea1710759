"""Hard negatives from the model's own neighbours: per word, its nearest neighbours of ranks r1..r2
by cosine of the current input vectors, rebuilt every epoch (or every N chunks)."""
from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F

from .samplers import NegativeSampler, UnigramSampler

log = logging.getLogger("w2v")

BLOCK_FLOATS = 1 << 24   # a block's [rows, V] similarity matrix holds at most this many (64 MB)


@torch.no_grad()
def neighbour_pool(vectors: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """[V, last - first + 1] int32: row w holds the words of ranks first..last (1 = nearest) among
    all other words by cosine similarity to w, nearest first. One matrix product and top-k per
    block of rows, on the vectors' device; a word is never its own neighbour."""
    unit = F.normalize(vectors, dim=1)
    n = unit.shape[0]
    block = max(1, BLOCK_FLOATS // n)
    pool = torch.empty((n, last - first + 1), dtype=torch.int32, device=vectors.device)
    for a in range(0, n, block):
        b = min(a + block, n)
        sims = unit[a:b] @ unit.T
        rows = torch.arange(b - a, device=vectors.device)
        sims[rows, rows + a] = -float("inf")
        pool[a:b] = sims.topk(last, dim=1).indices[:, first - 1:].to(torch.int32)
    return pool


class NeighbourSampler(NegativeSampler):
    """Each example: K - `hard` unigram draws, then `hard` draws uniform from its positive word's
    pool (ranks `first`..`last` of its neighbours). The pool is rebuilt before chunk 0 of each
    epoch (`refresh_chunks` 0) or before every `refresh_chunks`-th chunk; the first pool comes from
    the initial (random) vectors. The positive is never in its own pool; a unigram draw equal to
    it is masked by the model, as for every sampler. Pools are not saved in checkpoints: a resumed
    run rebuilds them from the vectors it resumes with."""

    key = "neighbours"

    def __init__(self, counts, exponent, k, hard, first, last, refresh_chunks):
        super().__init__()
        self.easy = UnigramSampler(counts, exponent, k - hard)
        self.hard, self.first, self.last, self.refresh = hard, first, last, refresh_chunks
        self.pool, self.seconds, self.builds = None, 0.0, 0

    def prepare(self, model, chunk):
        due = chunk == 0 if self.refresh == 0 else chunk % self.refresh == 0
        if self.pool is not None and not due:
            return
        weight = model.in_embed.weight
        t0 = time.perf_counter()
        self.pool = neighbour_pool(weight[: len(self.easy.probabilities())].detach(), self.first, self.last)
        if weight.is_cuda:
            torch.cuda.synchronize(weight.device)
        spent = time.perf_counter() - t0
        self.seconds, self.builds = self.seconds + spent, self.builds + 1
        log.info("neighbour pools (ranks %d..%d of %d words) rebuilt in %.2fs", self.first, self.last,
                 self.pool.shape[0], spent)

    def draw(self, targets, generator):
        if self.pool is None:
            raise RuntimeError("NeighbourSampler.draw before prepare(): no neighbour pool yet")
        n = targets.shape[0]
        pick = torch.randint(0, self.pool.shape[1], (n, self.hard), generator=generator, device=targets.device)
        hard = self.pool[targets.long()].gather(1, pick)
        return torch.cat([self.easy.draw(targets, generator), hard.to(torch.long)], dim=1)

    def stats(self):
        out = {"neighbour_pool_seconds": round(self.seconds, 3), "neighbour_pool_builds": self.builds}
        self.seconds, self.builds = 0.0, 0
        return out
