"""Rejection and Metropolis-Hastings sampling of noise words from a target known up to a constant.

The target, per example: pi(w) proportional to count(w) ** alpha * exp(beta * s(h, w)), s the
logit the current model gives w (hard negatives when beta > 0, as MCNS's p_d(u|v) ** alpha).
The proposal is the unigram count ** alpha, so the importance ratio pi / proposal is
exp(beta * s) up to a constant: both samplers only score candidates, one gather and dot per batch."""
from __future__ import annotations

import torch

from .samplers import NegativeSampler, UnigramSampler, candidate_scores


class _Counted(NegativeSampler):
    """Acceptance counters kept on the device, read (and reset) once per epoch by `stats`."""

    refines_batches = True

    def __init__(self, counts, exponent, k, beta, per_example):
        super().__init__()
        self.k, self.beta = k, beta
        self.proposal = UnigramSampler(counts, exponent, per_example)
        self._counts = None

    def draw(self, targets, generator):
        return self.proposal.draw(targets, generator)

    def _count(self, name: str, value: torch.Tensor) -> None:
        if self._counts is None:
            self._counts = {}
        self._counts[name] = self._counts.get(name, 0) + value.detach().to(torch.float64).sum()

    def _read(self) -> dict:
        out = {name: float(v) for name, v in (self._counts or {}).items()}
        self._counts = None
        return out


class RejectionSampler(_Counted):
    """Exact rejection sampling: a proposal w is accepted with probability
    exp(beta * s(h, w) - |beta| * |h| * R), R the largest output-vector norm (so the exponent is <= 0
    by Cauchy-Schwarz; R is measured when each chunk starts, and an acceptance probability above 1
    if the norms grew within the chunk is counted as a bound violation). Each of the K noise words
    takes the first accepted of its `rounds` proposals; a slot with none accepted keeps its last
    proposal (a plain unigram draw), counted as a fallback."""

    key = "rejection"

    def __init__(self, counts, exponent, k, beta, rounds):
        super().__init__(counts, exponent, k, beta, k * rounds)
        self.rounds, self.row_norm = rounds, None

    def prepare(self, model, chunk):
        self.row_norm = None

    @torch.no_grad()
    def refine(self, model, batch, generator):
        *head, cand = batch
        cand = cand.view(cand.shape[0], self.k, self.rounds)
        if self.row_norm is None:
            self.row_norm = model.out_embed.weight.norm(dim=1).max()
        _, hidden, scores = candidate_scores(model, head, cand)                      # [B, K, R]
        bound = abs(self.beta) * hidden.norm(dim=1).view(-1, 1, 1) * self.row_norm
        log_accept = self.beta * scores - bound
        u = torch.rand(scores.shape, generator=generator, device=scores.device)
        accepted = torch.log(u) < log_accept
        first = torch.where(accepted.any(2), accepted.to(torch.int8).argmax(2), self.rounds - 1)
        self._count("proposals", torch.tensor(accepted.numel(), device=scores.device))
        self._count("accepted", accepted.sum())
        self._count("fallbacks", (~accepted.any(2)).sum())
        self._count("bound_violations", (log_accept > 0).sum())
        return (*head, cand.gather(2, first.unsqueeze(2)).squeeze(2))

    def stats(self):
        c = self._read()
        if not c:
            return {}
        return {"rejection_acceptance": c["accepted"] / c["proposals"],
                "rejection_fallback_rate": c["fallbacks"] / c["proposals"] * self.rounds,
                "rejection_bound_violations": int(c["bound_violations"])}


class MetropolisSampler(_Counted):
    """Independence Metropolis-Hastings with the unigram proposal: from state x, a proposal y is
    accepted with probability min(1, exp(beta * (s(h, y) - s(h, x)))).

    `chain: example`: one chain per example, started from a proposal, `burn_in` steps discarded,
    then its next K states are the K noise words. `chain: batch` (MCNS, Yang et al. 2020): the
    chains persist, one per position in the batch, each continuing from the state the previous
    batch left it in, rescored for the new example (no burn-in after the run's first batches);
    its K states per example are the noise words. The states are not saved in checkpoints, so a
    resumed run restarts the chains."""

    key = "mh"

    def __init__(self, counts, exponent, k, beta, chain, burn_in):
        self.per_example_chain = chain == "example"
        steps = 1 + burn_in + k if self.per_example_chain else k
        super().__init__(counts, exponent, k, beta, steps)
        self.burn_in, self.state = burn_in if self.per_example_chain else 0, None

    @torch.no_grad()
    def refine(self, model, batch, generator):
        *head, cand = batch
        n = cand.shape[0]
        if not self.per_example_chain:
            have = 0 if self.state is None else self.state.shape[0]
            if have < n:       # new chains (the run's first batch): start from a proposal of their own
                fresh = self.proposal.noise(n - have, 1, generator).view(-1).to(cand.dtype)
                self.state = fresh if self.state is None else torch.cat([self.state, fresh])
            cand = torch.cat([self.state[:n].unsqueeze(1).to(cand.dtype), cand], dim=1)
        _, _, scores = candidate_scores(model, head, cand)                           # [B, 1 + steps]
        u = torch.rand((n, cand.shape[1] - 1), generator=generator, device=cand.device)
        log_u = torch.log(u)
        x, sx = cand[:, 0], scores[:, 0]
        states, accepted = [], torch.zeros((), device=cand.device)
        for t in range(1, cand.shape[1]):    # a loop over the chain's steps, vectorised over examples
            take = log_u[:, t - 1] < self.beta * (scores[:, t] - sx)
            x, sx = torch.where(take, cand[:, t], x), torch.where(take, scores[:, t], sx)
            accepted = accepted + take.sum()
            if t > self.burn_in:
                states.append(x)
        if not self.per_example_chain:
            self.state[:n] = x
        self._count("proposals", torch.tensor(n * (cand.shape[1] - 1), device=cand.device))
        self._count("accepted", accepted)
        return (*head, torch.stack(states, dim=1))

    def stats(self):
        c = self._read()
        return {"mh_acceptance": c["accepted"] / c["proposals"]} if c else {}
