"""NCE and sampled softmax: gradients equal autograd of the written loss, the importance-sampling
partition estimate is unbiased and the self-normalised estimate consistent; config and backends."""
import math

import numpy as np
import pytest
import torch

from conftest import assert_step_matches_autograd
from w2v.backends import torch_only_reason
from w2v.config import ConfigError, build_config
from w2v.heads import build_head
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives
from w2v.sampled_losses import SampledSoftmax, partition_estimate
from w2v.samplers import UnigramSampler, build_sampler, logit_correction
from w2v.word2vec import Word2Vec


def _scores_and_mask(seed=0, B=64, T=6):
    g = torch.Generator().manual_seed(seed)
    scores = (torch.randn(B, T, generator=g) * 2).requires_grad_(True)
    valid = (torch.rand(B, T, generator=g) > 0.2).float()
    valid[:, 0] = 1.0
    valid[:4, 0] = 0.0                     # padding rows: no positive
    valid[4:8, 1:] = 0.0                   # every noise word an accidental hit
    return scores, valid


@pytest.mark.parametrize("normaliser", ["joint", "samples"])
def test_sampled_softmax_gradient_is_autograd_of_its_loss(normaliser):
    objective = SampledSoftmax(normaliser)
    scores, valid = _scores_and_mask()
    loss = objective.loss(scores, valid).sum()
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.allclose(objective.gradient(scores.detach(), valid), -scores.grad, atol=1e-6)
    assert (objective.loss(scores, valid)[:4] == 0).all() and (scores.grad[:4] == 0).all()


def test_sampled_softmax_joint_is_the_softmax_over_positive_and_unmasked_samples():
    scores, valid = _scores_and_mask(seed=1)
    got = SampledSoftmax("joint").loss(scores, valid)
    for i in range(8, 20):
        live = valid[i] > 0
        expected = -torch.log_softmax(scores[i][live], 0)[0]
        assert torch.allclose(got[i], expected, atol=1e-5)
    # 'samples': -s0 + log mean_k exp(s_k), over every sample (accidental hits too)
    got = SampledSoftmax("samples").loss(scores, valid)
    expected = -scores[:, 0] + torch.logsumexp(scores[:, 1:], 1) - math.log(scores.shape[1] - 1)
    assert torch.allclose(got[4:], expected[4:], atol=1e-5)


def _model(cls, V, D, seed, head):
    model = cls(V, D, head=head)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(V, D, generator=g) * 0.5)
        model.out_embed.weight.copy_(torch.randn(V, D, generator=g) * 0.5)
    return model


LOSSES = [{"loss": "nce"}, {"loss": "sampled_softmax"}, {"loss": "sampled_softmax", "softmax_normaliser": "samples"}]


@pytest.mark.parametrize("cls", [SkipGram, SkipGramSharedNegatives, CBOW])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda s: "-".join(s.values()))
def test_fused_step_with_each_loss_equals_autograd(cls, loss):
    V, D, lr = 30, 6, 0.1
    m = build_config({"model": loss}).model
    counts = torch.arange(V, 0, -1) * 7
    sampler = UnigramSampler(counts, 0.75, 4)
    heads = [build_head(m, counts, logit_correction(m, sampler)) for _ in range(2)]
    ref, fused = _model(cls, V, D, 6, heads[0]), _model(cls, V, D, 6, heads[1])
    g = torch.Generator().manual_seed(7)
    centre, negatives = torch.randint(0, V, (24,), generator=g), torch.randint(0, V, (24, 4), generator=g)
    negatives[:3, 0] = centre[:3]        # accidental hits
    if cls is SkipGram:
        inputs = (centre, torch.randint(0, V, (24,), generator=g), negatives)
    else:
        width = 1 if cls is CBOW else 3
        mask = torch.ones(24, width, dtype=torch.bool)
        if width > 1:
            mask[:5, 2] = False
        inputs = (torch.randint(0, V, (24, width), generator=g), mask, centre, negatives)
    assert_step_matches_autograd(ref, fused, inputs, lr)


def test_nce_and_sampled_softmax_corrections():
    counts = torch.tensor([50, 20, 10, 5, 5, 1])
    for loss, k, scale in (("nce", 5, 5), ("sampled_softmax", 5, 1), ("nce", 3, 6)):
        sampler_name = "mixed" if scale == 6 else "unigram"
        m = build_config({"model": {"loss": loss, "negative": k, "sampler": sampler_name}}).model
        sampler = build_sampler(m, counts, torch.ones(6), 16)
        q = sampler.probabilities().double()
        assert torch.allclose(logit_correction(m, sampler).double(), -torch.log(scale * q), atol=1e-5)


def _tiny_problem(V=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(V, generator=g, dtype=torch.float64) * 1.5
    q = torch.rand(V, generator=g, dtype=torch.float64) + 0.2
    return s, q / q.sum()


def test_importance_sampling_partition_estimate_is_unbiased():
    s, q = _tiny_problem()
    exact = torch.exp(s).sum()
    g = torch.Generator().manual_seed(1)
    draws = torch.multinomial(q, 40_000 * 5, replacement=True, generator=g).view(40_000, 5)
    z_hat = partition_estimate(s[draws], torch.log(q[draws]))
    mean, se = z_hat.mean(), z_hat.std() / math.sqrt(len(z_hat))
    assert abs(mean - exact) < 4 * se, (float(mean), float(exact), float(se))
    # Without the 1/q weights the estimate is off by many standard errors: the test can fail.
    plain = torch.exp(s[draws]).mean(1) * len(s)
    assert abs(plain.mean() - exact) > 10 * plain.std() / math.sqrt(len(plain))


def test_self_normalised_estimate_is_consistent():
    """The 'samples' loss's gradient weights on the noise words estimate softmax(s) (as
    E_p[d s / d theta]): biased for small K, the error shrinking to ~0 as K grows."""
    s, q = _tiny_problem(seed=2)
    p = torch.softmax(s, 0)
    objective = SampledSoftmax("samples")
    g = torch.Generator().manual_seed(3)
    errors = {}
    for k in (2, 20, 200, 2000):
        total = 0.0
        for _ in range(50):
            x = torch.multinomial(q, k, replacement=True, generator=g)
            scores = torch.cat([torch.zeros(1, dtype=torch.float64), s[x] - torch.log(q[x])]).unsqueeze(0)
            weights = -objective.gradient(scores, torch.ones_like(scores))[0, 1:]
            p_hat = torch.zeros_like(p).index_add_(0, x, weights)
            total += 0.5 * (p_hat - p).abs().sum().item()     # total variation distance
        errors[k] = total / 50
    assert errors[2] > errors[20] > errors[200] > errors[2000], errors
    assert errors[2000] < 0.05 and errors[2] > 0.2, errors


def test_config_refuses_losses_without_a_noise_distribution():
    for sampler in ("dns", "rejection", "mh", "neighbours"):
        with pytest.raises(ConfigError, match="model.sampler"):
            build_config({"model": {"loss": "nce", "sampler": sampler}})
    with pytest.raises(ConfigError, match="model.logq_correction"):
        build_config({"model": {"loss": "sampled_softmax", "logq_correction": True}})
    with pytest.raises(ConfigError, match="model.softmax_normaliser"):
        build_config({"model": {"loss": "sampled_softmax", "softmax_normaliser": "full"}})
    with pytest.raises(ConfigError, match="model.loss"):
        build_config({"model": {"loss": "softmax"}})
    assert build_config({"model": {"loss": "nce", "sampler": "in_batch"}}).model.loss == "nce"


def test_kernels_refuse_the_new_losses_naming_the_key():
    counts = torch.arange(20, 0, -1)
    for loss, words in (("nce", "model.loss: nce"), ("sampled_softmax", "model.loss: sampled_softmax")):
        m = build_config({"model": {"loss": loss}}).model
        sampler = build_sampler(m, counts, torch.ones(20), 16)
        model = SkipGram(20, 4, head=build_head(m, counts, logit_correction(m, sampler)))
        assert words in torch_only_reason(model, sampler)
    m = build_config({}).model
    assert torch_only_reason(SkipGram(20, 4, head=build_head(m, counts)), build_sampler(m, counts, torch.ones(20), 16)) is None


def test_word2vec_api_takes_the_losses():
    sentences = [["a", "b", "c", "d"] * 5, ["b", "c", "e"] * 6] * 20
    model = Word2Vec(sentences, vector_size=8, min_count=1, epochs=1, workers=1, loss="nce", sampler="two_group")
    assert model.config.model.loss == "nce" and model.config.model.sampler == "two_group"
    assert np.isfinite(model.wv["a"]).all()
    with pytest.raises(ValueError, match="hs=1"):
        Word2Vec(sentences, vector_size=8, min_count=1, hs=1, negative=0, loss="nce")
    with pytest.raises(TypeError, match="'hs'"):
        Word2Vec(sentences, vector_size=8, min_count=1, loss="hs")
