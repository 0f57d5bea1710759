"""Subsampling keep rates, shrunk-window distances, and the noise distribution."""
import math

import numpy as np
import torch

from w2v.noise import NoiseSampler
from w2v.subsample import keep_probabilities, subsample_mask
from w2v.windows import context_matrix


def test_keep_probability_is_word2vec_formula():
    counts = torch.tensor([5000, 1000, 100, 10, 1], dtype=torch.int64)
    s = 1e-2
    f = counts.double() / counts.sum()
    expected = torch.clamp((s / f).sqrt() + s / f, max=1.0)
    assert torch.allclose(keep_probabilities(counts, s).double(), expected, atol=1e-6)
    assert keep_probabilities(counts, 0.0).eq(1).all()


def test_observed_keep_rates_match_formula():
    counts = torch.tensor([50000, 20000, 5000, 500, 50])
    keep = keep_probabilities(counts, 1e-2)
    ids = torch.arange(5).repeat_interleave(40000)
    g = torch.Generator().manual_seed(0)
    mask = subsample_mask(ids, keep, g).view(5, 40000).float().mean(dim=1)
    se = torch.sqrt(keep * (1 - keep) / 40000)
    assert (mask - keep).abs().le(5 * se + 1e-9).all(), (mask, keep)
    assert keep[0] < 0.6  # the frequent word really is dropped often


def test_window_distance_distribution_is_shrunk_uniform():
    W, n = 5, 200000
    sentence = torch.zeros(n, dtype=torch.int64)
    pos, valid = context_matrix(sentence, W, torch.Generator().manual_seed(1))
    dist = (pos - torch.arange(n).unsqueeze(1)).abs()[valid]
    assert dist.min() >= 1 and dist.max() <= W
    freq = torch.bincount(dist, minlength=W + 1)[1:].double()
    # P(distance d used) = (W - d + 1) / W when the window is uniform in 1..W
    expected = torch.tensor([(W - d + 1) / W for d in range(1, W + 1)], dtype=torch.float64)
    ratio = (freq / freq[0]) / (expected / expected[0])
    assert (ratio - 1).abs().max() < 0.02, ratio


def test_windows_never_cross_sentences():
    sentence = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    pos, valid = context_matrix(sentence, 4, torch.Generator().manual_seed(2))
    centre_sent = sentence.unsqueeze(1).expand_as(pos)
    assert (sentence[pos][valid] == centre_sent[valid]).all()
    assert not valid[5].any()  # a one-word sentence has no context


def _chi_square_statistic(samples, probs, bins=100):
    """Chi-square over bins of equal expected mass (words in frequency order)."""
    cum = np.cumsum(probs)
    edges = np.searchsorted(cum, np.linspace(0, 1, bins + 1)[1:-1])
    bin_of_word = np.zeros(len(probs), dtype=np.int64)
    bin_of_word[edges] += 1
    bin_of_word = np.cumsum(bin_of_word)
    expected = np.bincount(bin_of_word, weights=probs, minlength=bins) * len(samples)
    observed = np.bincount(bin_of_word[samples], minlength=bins)
    keep = expected > 0
    return float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()), int(keep.sum()) - 1


def _chi2_critical(df, z=3.09):
    """Upper 0.1% point via Wilson-Hilferty (z = 3.09)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_noise_sampler_matches_unigram_power_on_large_vocab():
    V = 120_000
    rng = np.random.default_rng(3)
    counts = np.sort(rng.zipf(1.3, V).clip(max=10**7))[::-1].astype(np.int64)
    sampler = NoiseSampler(torch.from_numpy(counts), 0.75)
    draws = sampler(200_000, 5, torch.Generator().manual_seed(4)).flatten().numpy()
    probs = counts.astype(np.float64) ** 0.75
    probs /= probs.sum()
    stat, df = _chi_square_statistic(draws, probs)
    assert stat < _chi2_critical(df), (stat, df)
    # The same test rejects the plain unigram: it can tell exponents apart.
    plain = counts / counts.sum()
    stat_plain, df_plain = _chi_square_statistic(draws, plain)
    assert stat_plain > _chi2_critical(df_plain)


def test_noise_shape_and_exponent_zero_is_uniform():
    s = NoiseSampler(torch.tensor([1000, 10, 1]), 0.0)
    assert torch.allclose(s.weights, torch.full((3,), 1 / 3))
    assert s(7, 4).shape == (7, 4)


def test_windows_equal_the_rule_checked_one_pair_at_a_time():
    """valid[i, j] exactly when 0 < |d| <= the drawn window of i and i + d is in i's sentence."""
    g = torch.Generator().manual_seed(4)
    lengths = torch.randint(1, 9, (60,), generator=g)
    sentence = torch.repeat_interleave(torch.arange(60) * 3, lengths)   # sorted, not consecutive ids
    W, n = 4, int(lengths.sum())
    pos, valid = context_matrix(sentence, W, torch.Generator().manual_seed(5))
    eff = torch.randint(1, W + 1, (n,), generator=torch.Generator().manual_seed(5))  # the same draw
    offsets = [d for d in range(-W, W + 1) if d]
    for i in range(n):
        for c, d in enumerate(offsets):
            j = i + d
            expected = abs(d) <= eff[i] and 0 <= j < n and bool(sentence[j] == sentence[i])
            assert bool(valid[i, c]) == expected, (i, d)
            assert 0 <= int(pos[i, c]) < n and (not expected or int(pos[i, c]) == j)
