"""Negative-sampling strategies: drawn distributions, DNS, in-batch, logQ, and every one end to end."""
import json
import os

import numpy as np
import pytest
import torch

from test_sampling import _chi2_critical, _chi_square_statistic
from w2v.config import ConfigError, build_config
from w2v.heads import NegativeSamplingHead
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives
from w2v.samplers import (DynamicSampler, InBatchSampler, MixedSampler, SharedSampler, UniformSampler,
                          UnigramSampler)
from w2v.trainer import train
from conftest import assert_step_matches_autograd

DEVICE = os.environ.get("W2V_TEST_DEVICE", "cpu")


def _zipf_counts(V, seed=3):
    rng = np.random.default_rng(seed)
    return np.sort(rng.zipf(1.3, V).clip(max=10**6))[::-1].astype(np.int64)


def _power(counts, alpha):
    p = counts.astype(np.float64) ** alpha
    return p / p.sum()


def test_unigram_sampler_draws_count_power_and_rejects_other_exponents():
    counts = _zipf_counts(20_000)
    sampler = UnigramSampler(torch.from_numpy(counts), 0.5, k=5)         # fastText's exponent
    draws = sampler.draw(torch.zeros(100_000, dtype=torch.long), torch.Generator().manual_seed(1))
    assert draws.shape == (100_000, 5)
    flat = draws.flatten().numpy()
    stat, df = _chi_square_statistic(flat, _power(counts, 0.5))
    assert stat < _chi2_critical(df), (stat, df)
    for wrong in (0.75, 0.0):
        stat, df = _chi_square_statistic(flat, _power(counts, wrong))
        assert stat > _chi2_critical(df), wrong


def test_uniform_sampler_is_uniform_and_not_unigram():
    counts = _zipf_counts(5_000)
    sampler = UniformSampler(5_000, k=4)
    flat = sampler.draw(torch.zeros(50_000, dtype=torch.long), torch.Generator().manual_seed(2)).flatten().numpy()
    stat, df = _chi_square_statistic(flat, np.full(5_000, 1 / 5_000))
    assert stat < _chi2_critical(df), (stat, df)
    stat, df = _chi_square_statistic(flat, _power(counts, 0.75))
    assert stat > _chi2_critical(df)
    assert torch.allclose(sampler.probabilities().sum(), torch.tensor(1.0))


def test_shared_sampler_repeats_one_unigram_draw_per_group():
    counts = _zipf_counts(5_000)
    sampler = SharedSampler(torch.from_numpy(counts), 0.75, k=5, group=4)
    draws = sampler.draw(torch.zeros(40_003, dtype=torch.long), torch.Generator().manual_seed(3))
    assert draws.shape == (40_003, 5)
    groups = draws[:40_000].view(-1, 4, 5)
    assert (groups == groups[:, :1]).all()                      # one draw per group of 4
    assert not (groups[1:, 0] == groups[:-1, 0]).all(dim=1).all()  # but a new one for each group
    stat, df = _chi_square_statistic(groups[:, 0].flatten().numpy(), _power(counts, 0.75))
    assert stat < _chi2_critical(df), (stat, df)


def test_in_batch_never_uses_the_examples_own_positive_and_stays_in_its_batch():
    n, batch, k = 2_500, 64, 6                   # last batch is short (4 examples)
    targets = torch.randperm(10_000, generator=torch.Generator().manual_seed(4))[:n]   # distinct ids
    sampler = InBatchSampler(k, batch, torch.ones(10_000), torch.ones(10_000))
    neg = sampler.draw(targets, torch.Generator().manual_seed(5))
    where = {int(t): i for i, t in enumerate(targets)}
    source = torch.tensor([[where[int(x)] for x in row] for row in neg])   # example each noise word came from
    own = torch.arange(n).unsqueeze(1)
    assert (source != own).all()
    assert (source // batch == own // batch).all()
    # The other examples are picked uniformly: offsets 1..63 within full batches.
    offsets = ((source - own) % batch)[: n - n % batch].flatten().numpy()
    stat, df = _chi_square_statistic(offsets - 1, np.full(batch - 1, 1 / (batch - 1)), bins=batch - 1)
    assert stat < _chi2_critical(df), (stat, df)


def test_in_batch_equal_words_and_lone_examples_are_masked():
    targets = torch.tensor([7, 7, 7, 3, 3, 9])     # batches [7 7 7 3 3] and [9]
    neg = InBatchSampler(4, 5, torch.ones(10), torch.ones(10)).draw(targets, torch.Generator().manual_seed(6))
    assert (neg[5] == 9).all()                      # a batch of one has only its own word ...
    _, _, valid = NegativeSamplingHead().targets(targets, neg)
    used = neg[valid[:, 1:].bool()]
    assert not (neg == targets.unsqueeze(1))[valid[:, 1:].bool()].any()   # ... and it is never used
    assert set(used.tolist()) <= {3, 7} and len(used) > 0


def test_mixed_sampler_is_in_batch_then_unigram_and_q_is_the_mixture():
    counts = torch.from_numpy(_zipf_counts(1_000))
    keep = torch.rand(1_000, generator=torch.Generator().manual_seed(7))
    ib, uni = InBatchSampler(3, 16, counts, keep), UnigramSampler(counts, 0.75, 2)
    mixed = MixedSampler(ib, uni)
    targets = torch.arange(500, 564)
    neg = mixed.draw(targets, torch.Generator().manual_seed(8))
    assert neg.shape == (64, 5)
    assert torch.isin(neg[:, :3], targets).all()
    q = mixed.probabilities()
    assert torch.allclose(q, (3 * ib.probabilities() + 2 * uni.probabilities()) / 5)
    assert torch.allclose(q.sum(), torch.tensor(1.0), atol=1e-5)


def _random_model(cls, V=200, D=16, seed=0, **kw):
    model = cls(V, D, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(model.in_embed.weight.shape, generator=g) * 0.5)
        model.out_embed.weight.copy_(torch.randn(model.out_embed.weight.shape, generator=g) * 0.5)
    return model


def _noise_scores(model, contexts, mask, negatives):
    h = (model.in_embed.weight[contexts] * mask.unsqueeze(2)).sum(1) / mask.sum(1, keepdim=True)
    return (model.out_embed.weight[negatives] * h.unsqueeze(1)).sum(2)


@pytest.mark.parametrize("softmax", [False, True])
def test_dns_picks_higher_scoring_negatives_than_a_plain_draw(softmax):
    V, B, K, M = 200, 512, 5, 25
    counts = torch.arange(V, 0, -1) * 10          # mild popularity, so the candidates are varied
    model = _random_model(CBOW, V)
    g = torch.Generator().manual_seed(9)
    contexts, mask = torch.randint(0, V, (B, 4), generator=g), torch.ones(B, 4, dtype=torch.bool)
    centre = torch.randint(0, V, (B,), generator=g)
    dns = DynamicSampler(counts, 0.75, K, M, softmax)
    assert dns.draw(centre, g).shape == (B, M)
    cand = torch.rand(B, V, generator=g).argsort(dim=1)[:, :M]     # distinct candidates per example
    *_, picked = dns.refine(model, (contexts, mask, centre, cand), g)
    # K different candidates per example (softmax too: drawn without replacement)
    assert (picked.sort(dim=1).values.diff(dim=1) != 0).all()
    plain = UnigramSampler(counts, 0.75, K).draw(centre, g)
    hard, easy = _noise_scores(model, contexts, mask, picked), _noise_scores(model, contexts, mask, plain)
    assert picked.shape == (B, K) and torch.isin(picked, cand).all()
    # A plain draw scores ~0 on average (spread sigma). The top 5 of 25 average over +1 sigma; a
    # draw from the softmax of roughly normal scores averages sigma^2 above the mean (half asked).
    margin = easy.var() / 2 if softmax else easy.std()
    assert hard.mean() > easy.mean() + margin, (hard.mean(), easy.mean(), margin)
    if not softmax:   # top K: every kept candidate scores at least as high as every dropped one
        own = cand == centre.unsqueeze(1)
        kth = _noise_scores(model, contexts, mask, cand).masked_fill(own, -1e9).topk(K, dim=1).values[:, -1]
        assert (picked != centre.unsqueeze(1)).all()          # the positive is never kept
        assert (hard.min(dim=1).values >= kth - 1e-5).all()


def test_dns_scores_per_pair_skipgram_with_the_context_vector():
    V, K = 100, 3
    model = _random_model(SkipGram, V, seed=1)
    centre, context = torch.tensor([5, 6]), torch.tensor([10, 11])
    cand = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(2))
    dns = DynamicSampler(torch.ones(V), 0.75, K, 12, False)
    _, _, picked = dns.refine(model, (centre, context, cand), None)
    scores = (model.out_embed.weight[cand] * model.in_embed.weight[context].unsqueeze(1)).sum(2)
    scores[cand == centre.unsqueeze(1)] = -1e9
    expected = cand.gather(1, scores.topk(K, dim=1).indices)
    assert torch.equal(picked, expected)


@pytest.mark.parametrize("mean", [True, False])
def test_dns_scores_cbow_with_the_models_own_hidden_vector(mean):
    """CBOW's hidden vector is the mean of its contexts, or their sum (`cbow_mean: false`); DNS's
    softmax draw depends on the scores' scale, so it must score with the vector the model uses."""
    V, B, K, M, C = 100, 64, 3, 12, 4
    model = _random_model(CBOW, V, seed=3, mean=mean)
    g = torch.Generator().manual_seed(4)
    contexts, mask = torch.randint(0, V, (B, C), generator=g), torch.ones(B, C, dtype=torch.bool)
    centre, cand = torch.randint(0, V, (B,), generator=g), torch.randint(0, V, (B, M), generator=g)
    dns = DynamicSampler(torch.ones(V), 0.75, K, M, softmax=True)
    *_, picked = dns.refine(model, (contexts, mask, centre, cand), torch.Generator().manual_seed(5))

    def softmax_pick(hidden):
        scores = (model.out_embed.weight[cand] * hidden.unsqueeze(1)).sum(2)
        scores[cand == centre.unsqueeze(1)] = -1e9
        u = torch.rand(scores.shape, generator=torch.Generator().manual_seed(5)).clamp_(min=1e-20)
        return cand.gather(1, (scores - torch.log(-torch.log(u))).topk(K, dim=1).indices)

    summed = model.in_embed.weight[contexts].sum(1)
    assert torch.equal(picked, softmax_pick(summed / C if mean else summed))
    assert not torch.equal(picked, softmax_pick(summed if mean else summed / C))


def test_logq_correction_changes_logits_by_minus_log_q():
    V = 50
    q = torch.softmax(torch.randn(V, generator=torch.Generator().manual_seed(3)), 0)
    plain = _random_model(SkipGram, V, seed=4)
    corrected = _random_model(SkipGram, V, seed=4, head=NegativeSamplingHead(-torch.log(q)))
    assert corrected.needs_torch_step and not plain.needs_torch_step
    centre, context = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    negatives = torch.tensor([[7, 8], [9, 10], [11, 1]])
    rows = torch.cat([centre.unsqueeze(1), negatives], 1)
    logits = (plain.out_embed.weight[rows] * plain.in_embed.weight[context].unsqueeze(1)).sum(2)
    expected = logits - torch.log(q)[rows]
    assert torch.allclose(corrected._scores(logits, rows), expected)
    # and the loss really is computed on the corrected logits
    from w2v.loss import negative_sampling_loss
    _, _, valid = corrected._targets(centre, negatives)
    assert torch.allclose(corrected(centre, context, negatives), negative_sampling_loss(expected, valid))
    assert not torch.allclose(plain(centre, context, negatives), corrected(centre, context, negatives))


@pytest.mark.parametrize("cls", [SkipGram, SkipGramSharedNegatives, CBOW])
def test_fused_step_with_logq_equals_autograd(cls):
    V, D, lr = 30, 6, 0.1
    correction = torch.rand(V, generator=torch.Generator().manual_seed(5)) * 3
    ref = _random_model(cls, V, D, seed=6, head=NegativeSamplingHead(correction))
    fused = _random_model(cls, V, D, seed=6, head=NegativeSamplingHead(correction))
    g = torch.Generator().manual_seed(7)
    centre, negatives = torch.randint(0, V, (24,), generator=g), torch.randint(0, V, (24, 4), generator=g)
    if cls is SkipGram:
        inputs = (centre, torch.randint(0, V, (24,), generator=g), negatives)
    else:   # one context per example, so CBOW's full-gradient rule equals exact autograd
        width = 1 if cls is CBOW else 3
        inputs = (torch.randint(0, V, (24, width), generator=g), torch.ones(24, width, dtype=torch.bool),
                  centre, negatives)
    assert_step_matches_autograd(ref, fused, inputs, lr)


def test_config_keys_are_validated():
    with pytest.raises(ConfigError, match="model.sampler"):
        build_config({"model": {"sampler": "hard"}})
    with pytest.raises(ConfigError, match="model.dns_candidates"):
        build_config({"model": {"sampler": "dns", "negative": 5, "dns_candidates": 3}})
    with pytest.raises(ConfigError, match="model.sampler"):
        build_config({"model": {"loss": "hs", "sampler": "dns"}})
    with pytest.raises(ConfigError, match="model.logq_correction"):
        build_config({"model": {"sampler": "dns", "logq_correction": True}})
    with pytest.raises(ConfigError, match="model.loss"):
        build_config({"model": {"loss": "softmax"}})
    assert build_config({}).model.sampler == "unigram" and build_config({}).model.ns_exponent == 0.75


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """Synthetic: 2 topics of 20 words each; sentences draw from one topic (20k tokens)."""
    rng = np.random.default_rng(0)
    lines = []
    for _ in range(1_000):
        topic = rng.integers(2)
        lines.append(" ".join(f"{'ab'[topic]}{w}" for w in rng.integers(0, 20, size=20)))
    path = tmp_path_factory.mktemp("tiny") / "tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


STRATEGIES = [{"sampler": "unigram"}, {"sampler": "uniform"}, {"sampler": "dns", "dns_candidates": 10},
              {"sampler": "dns", "dns_softmax": True}, {"sampler": "in_batch"},
              {"sampler": "in_batch", "logq_correction": True}, {"sampler": "mixed"},
              {"sampler": "shared", "shared_group": 4}, {"loss": "hs"},
              {"loss": "nce"}, {"loss": "sampled_softmax"}, {"sampler": "two_group", "two_group_threshold": 1000},
              {"negative_subsample": 1e-2}, {"sampler": "rejection"}, {"sampler": "mh"},
              {"sampler": "mh", "mh_chain": "batch"},
              {"sampler": "neighbours", "neighbour_from": 2, "neighbour_to": 10}]


@pytest.mark.parametrize("arch", ["skipgram", "cbow"])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: "-".join(f"{v}" for v in s.values()))
def test_every_strategy_trains_end_to_end(tiny_corpus, tmp_path, arch, strategy):
    cfg = build_config({"corpus": {"paths": [str(tiny_corpus)]}, "output": {"dir": str(tmp_path), "binary": False},
                        "vocab": {"min_count": 1},
                        "model": {"arch": arch, "dim": 16, "window": 3, "sample": 0, **strategy},
                        "train": {"epochs": 2, "threads": 1, "device": DEVICE, "batch_size": 64,
                                  "alpha": 0.05}})
    result = train(cfg, quiet=True)
    losses = [e["loss"] for e in result["epochs"]]
    # The neighbour pools of epoch 2 come from trained vectors: harder noise, so the loss may rise.
    assert all(np.isfinite(losses)) and (losses[1] < losses[0] or strategy.get("sampler") == "neighbours"), losses
    from w2v.keyedvectors import KeyedVectors
    emb = KeyedVectors.load_word2vec_format(tmp_path / "word_embedding.txt")
    # Words of one topic end up closer to each other than to the other topic's words.
    unit = emb.get_normed_vectors()
    a, b = unit[[emb.lookup(f"a{i}") for i in range(20)]], unit[[emb.lookup(f"b{i}") for i in range(20)]]
    within, across = (a @ a.T)[~np.eye(20, dtype=bool)].mean(), (a @ b.T).mean()
    assert within > across + 0.1, (within, across)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert len(saved["epochs"]) == 2
