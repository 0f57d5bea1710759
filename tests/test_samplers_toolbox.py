"""Rejection, Metropolis-Hastings, two-group, negative subsampling and neighbour samplers: their
draws against the exact distributions, acceptance rates, pools against a brute-force ranking."""
import json

import numpy as np
import pytest
import torch

from test_sampling import _chi2_critical, _chi_square_statistic
from w2v import logs
from w2v.config import ConfigError, build_config
from w2v.mcmc import MetropolisSampler, RejectionSampler
from w2v.model import SkipGram
from w2v.neighbours import NeighbourSampler, neighbour_pool
from w2v.samplers import NegativeSampler, SubsampledNegatives, TwoGroupSampler, build_sampler
from w2v.subsample import keep_probabilities
from w2v.trainer import train

V, D = 40, 8


def _model(seed=0, scale=0.6):
    model = SkipGram(V, D)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(V, D, generator=g) * scale)
        model.out_embed.weight.copy_(torch.randn(V, D, generator=g) * scale)
    return model


def _counts():
    return torch.from_numpy(np.sort(np.random.default_rng(1).zipf(1.5, V).clip(max=5000))[::-1].copy())


def _target(model, counts, context, alpha, beta):
    """The exact normalised target: count^alpha * exp(beta * out_w . in_context)."""
    s = (model.out_embed.weight @ model.in_embed.weight[context]).detach().double()
    w = counts.double() ** alpha * torch.exp(beta * s)
    return (w / w.sum()).numpy()


def _one_context_batch(n, context=3, centre=0):
    return torch.full((n,), centre, dtype=torch.long), torch.full((n,), context, dtype=torch.long)


def _proposal(counts, alpha):
    p = counts.double() ** alpha
    return (p / p.sum()).numpy()


def test_rejection_draws_follow_the_target():
    counts, alpha, beta, n = _counts(), 0.75, 1.0, 10_000
    # Small vectors: the Cauchy-Schwarz bound is loose, and every slot needs an accepted proposal.
    model, sampler = _model(scale=0.4), RejectionSampler(_counts(), 0.75, 2, beta, rounds=300)
    g = torch.Generator().manual_seed(2)
    centre, context = _one_context_batch(n)
    sampler.prepare(model, 0)
    *_, noise = sampler.refine(model, (centre, context, sampler.draw(centre, g)), g)
    stats = sampler.stats()
    assert stats["rejection_fallback_rate"] == 0 and stats["rejection_bound_violations"] == 0, stats
    print("rejection acceptance", stats["rejection_acceptance"])
    flat = noise.flatten().numpy()
    target = _target(model, counts, 3, alpha, beta)
    stat, df = _chi_square_statistic(flat, target, bins=V)
    assert stat < _chi2_critical(df), (stat, df)
    assert np.abs(target - _proposal(counts, alpha)).sum() > 0.2     # beta matters here
    stat, df = _chi_square_statistic(flat, _proposal(counts, alpha), bins=V)
    assert stat > _chi2_critical(df)                      # not the proposal: the test can fail


def _exact_mh_acceptance(p, q, steps, burn_in):
    """Expected acceptance rate of the independence chain started from q, averaged over `steps`."""
    w = p / q
    accept = np.minimum(1.0, w[None, :] / w[:, None]) * q[None, :]     # [x, y]: propose y and accept
    d, rates = q.copy(), []
    for _ in range(steps):
        rates.append(float(d @ accept.sum(1)))
        move = d[:, None] * accept
        d = d - move.sum(1) + move.sum(0)
    return float(np.mean(rates))


@pytest.mark.parametrize("chain", ["example", "batch"])
def test_metropolis_hastings_after_burn_in_follows_the_target(chain):
    counts, alpha, beta = _counts(), 0.75, 1.5
    model = _model(seed=4)
    p, q = _target(model, counts, 3, alpha, beta), _proposal(counts, alpha)
    sampler = MetropolisSampler(counts, alpha, 3, beta, chain, burn_in=20)
    g = torch.Generator().manual_seed(5)
    n = 20_000 if chain == "example" else 4_000
    centre, context = _one_context_batch(n)
    batches = 1 if chain == "example" else 12          # chains carried across batches burn in over them
    for _ in range(batches):
        *_, noise = sampler.refine(model, (centre, context, sampler.draw(centre, g)), g)
    acceptance = sampler.stats()["mh_acceptance"]
    print(f"mh ({chain}) acceptance {acceptance:.3f}")
    steps = 20 + 3 if chain == "example" else 3 * batches
    expected = _exact_mh_acceptance(p, q, steps, 20)
    assert abs(acceptance - expected) < 0.01, (acceptance, expected)
    last = noise[:, -1].numpy()                              # one state per independent chain
    stat, df = _chi_square_statistic(last, p, bins=V)
    assert stat < _chi2_critical(df), (stat, df)
    stat, df = _chi_square_statistic(last, q, bins=V)
    assert stat > _chi2_critical(df)


def test_two_group_sampler_is_its_mixture():
    counts = _counts()
    threshold = int(counts[10])                              # 11+ frequent words
    for mix in (0.0, 0.7):
        sampler = TwoGroupSampler(counts, 0.75, 5, threshold, mix)
        frequent = (counts >= threshold).double()
        share = mix or float(frequent.mean())
        power = counts.double() ** 0.75 * frequent
        q = share * power / power.sum() + (1 - share) * (1 - frequent) / (1 - frequent).sum()
        assert torch.allclose(sampler.probabilities().double(), q, atol=1e-6)
        draws = sampler.draw(torch.zeros(40_000, dtype=torch.long), torch.Generator().manual_seed(6)).flatten()
        stat, df = _chi_square_statistic(draws.numpy(), q.numpy(), bins=V)
        assert stat < _chi2_critical(df), (mix, stat, df)
        observed_frequent = frequent[draws].mean().item()
        assert abs(observed_frequent - share) < 0.01
    stat, df = _chi_square_statistic(draws.numpy(), _proposal(counts, 0.75), bins=V)
    assert stat > _chi2_critical(df)


class _Fixed(NegativeSampler):
    def __init__(self, ids):
        super().__init__()
        self.ids = ids

    def draw(self, targets, generator):
        return self.ids


def test_negative_subsampling_keeps_each_word_at_the_formulas_rate():
    counts = _counts()
    keep = keep_probabilities(counts, 1e-2)
    assert (keep < 0.5).any() and (keep == 1).any()         # the threshold matters for some words only
    ids = torch.arange(V).repeat(5_000).view(-1, 8)          # every word drawn 5,000 times
    targets = torch.full((ids.shape[0],), -1)                # a discarded slot becomes the positive: -1
    out = SubsampledNegatives(_Fixed(ids), keep).draw(targets, torch.Generator().manual_seed(7))
    kept = torch.zeros(V).index_add_(0, ids.flatten(), (out.flatten() >= 0).float()) / 5_000
    assert ((out == ids) | (out == -1)).all()
    se = (keep * (1 - keep) / 5_000).sqrt().clamp(min=1e-6)
    z = ((kept - keep) / se)[keep < 1]
    assert (z.abs() < 4.5).all(), z
    chi2 = float((z ** 2).sum())
    assert chi2 < _chi2_critical(len(z))
    wrong = keep_probabilities(counts, 3e-2)
    assert float((((kept - wrong) / se)[keep < 1] ** 2).sum()) > _chi2_critical(len(z))


def test_negative_subsampling_wraps_any_sampler_and_masks_with_the_positive():
    cfg = build_config({"model": {"negative_subsample": 1e-2, "sampler": "dns"}})
    sampler = build_sampler(cfg.model, _counts(), torch.ones(V), 64)
    assert isinstance(sampler, SubsampledNegatives) and sampler.refines_batches and sampler.key == "dns"
    model, g = _model(), torch.Generator().manual_seed(8)
    centre, context = torch.randint(0, V, (500,), generator=g), torch.randint(0, V, (500,), generator=g)
    *_, noise = sampler.refine(model, (centre, context, sampler.draw(centre, g)), g)
    masked = noise == centre.unsqueeze(1)
    assert noise.shape == (500, 5) and 0.05 < masked.float().mean() < 0.95
    with pytest.raises(ConfigError, match="model.negative_subsample"):
        build_config({"model": {"negative_subsample": 1e-3, "loss": "hs"}})


def test_neighbour_pool_is_ranks_of_a_brute_force_cosine_ranking(monkeypatch):
    g = torch.Generator().manual_seed(9)
    vectors = torch.randn(300, 12, generator=g, dtype=torch.float64)
    monkeypatch.setattr("w2v.neighbours.BLOCK_FLOATS", 300 * 7)        # several blocks, a short last one
    pool = neighbour_pool(vectors, 4, 11).numpy()
    x = vectors.numpy()
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    for w in range(300):
        cos = x @ x[w]
        order = [v for v in np.argsort(-cos, kind="stable") if v != w]
        assert list(pool[w]) == order[3:11], w
    assert not (pool == np.arange(300)[:, None]).any()


def test_neighbour_sampler_mixes_unigram_and_pool_and_never_draws_the_positive():
    counts, model = _counts(), _model(seed=10)
    sampler = NeighbourSampler(counts, 0.75, 5, 3, 2, 6, refresh_chunks=0)
    sampler.prepare(model, 0)
    pool = sampler.pool.clone()
    g = torch.Generator().manual_seed(11)
    targets = torch.randint(0, V, (5_000,), generator=g)
    noise = sampler.draw(targets, g)
    assert noise.shape == (5_000, 5)
    hard = noise[:, 2:]
    assert (hard != targets.unsqueeze(1)).all()
    assert (pool[targets].unsqueeze(2) == hard.unsqueeze(1).int()).any(1).all()    # each from its own pool
    easy = noise[:, :2].flatten().numpy()
    stat, df = _chi_square_statistic(easy, _proposal(counts, 0.75), bins=V)
    assert stat < _chi2_critical(df)
    # Rebuilt at an epoch start (chunk 0), kept in between; every N chunks with refresh_chunks N.
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(V, D, generator=g))
    sampler.prepare(model, 3)
    assert torch.equal(sampler.pool, pool)
    sampler.prepare(model, 0)
    assert not torch.equal(sampler.pool, pool)
    assert sampler.stats()["neighbour_pool_builds"] == 2
    every = NeighbourSampler(counts, 0.75, 5, 3, 2, 6, refresh_chunks=2)
    builds = []
    for c in range(5):
        every.prepare(model, c)
        builds.append(every.stats()["neighbour_pool_builds"])
    assert builds == [1, 0, 1, 0, 1]


def test_sampler_config_keys_are_checked():
    with pytest.raises(ConfigError, match="model.hard_negatives"):
        build_config({"model": {"sampler": "neighbours", "negative": 3, "hard_negatives": 4}})
    with pytest.raises(ConfigError, match="model.neighbour_to"):
        build_config({"model": {"neighbour_from": 20, "neighbour_to": 10}})
    with pytest.raises(ConfigError, match="model.mh_chain"):
        build_config({"model": {"mh_chain": "corpus"}})
    with pytest.raises(ConfigError, match="model.two_group_mix"):
        build_config({"model": {"two_group_mix": 1.5}})
    cfg = build_config({"model": {"sampler": "neighbours", "neighbour_to": V}})
    with pytest.raises(ConfigError, match="model.neighbour_to"):
        build_sampler(cfg.model, _counts(), torch.ones(V), 64)


def test_acceptance_rates_and_pool_costs_reach_the_metrics(tmp_path):
    rng = np.random.default_rng(0)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(f"w{w}" for w in rng.integers(0, 30, 15)) for _ in range(300)) + "\n")
    for model, key in (({"sampler": "mh"}, "mh_acceptance"), ({"sampler": "rejection"}, "rejection_acceptance"),
                       ({"sampler": "neighbours", "neighbour_from": 1, "neighbour_to": 5}, "neighbour_pool_seconds")):
        out = tmp_path / key
        cfg = build_config({"corpus": {"paths": [str(corpus)]}, "output": {"dir": str(out), "binary": False},
                            "vocab": {"min_count": 1}, "model": {"dim": 8, "sample": 0, **model},
                            "train": {"epochs": 2, "threads": 1, "batch_size": 64}})
        logs.setup(out, quiet=True)
        try:
            train(cfg, quiet=True)
        finally:
            logs.close()
        rows = json.loads((out / "metrics.json").read_text())["epochs"]
        assert all(key in r for r in rows), rows
        if key.endswith("acceptance"):
            assert all(0 < r[key] <= 1 for r in rows)
        assert key in (out / "train.log").read_text()
