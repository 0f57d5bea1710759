"""The C kernel's own example-making (ckernel.train_tokens): the same distributions and examples as
the torch reference (batches.make_examples), reproducible for a seed, and the same training."""
import pytest
import torch
from scipy.stats import chi2

from conftest import sample_head
from w2v import backends, ckernel
from w2v.config import build_config
from w2v.samplers import UniformSampler, UnigramSampler
from w2v.subsample import keep_probabilities
from w2v.trainer import train

_no_kernel = backends.unavailable_reason(torch.device("cpu"))
pytestmark = pytest.mark.skipif(_no_kernel is not None, reason=f"no C kernel: {_no_kernel}")

V, W, K = 40, 5, 5


@pytest.fixture(scope="module")
def chunk():
    """200k tokens of Zipf-distributed words in sentences of 1 to 30 words, with their counts."""
    g = torch.Generator().manual_seed(11)
    zipf = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
    ids = torch.multinomial(zipf, 200_000, replacement=True, generator=g).to(torch.int32)
    lengths = torch.randint(1, 31, (20_000,), generator=g)
    ends = torch.cumsum(lengths, 0)
    ends = ends[ends < ids.shape[0]]
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), ends, torch.tensor([ids.shape[0]])])
    counts = torch.bincount(ids.long(), minlength=V)
    return ids, offsets, counts


def _p_value(observed: torch.Tensor, expected: torch.Tensor, variance: torch.Tensor, df: int) -> float:
    stat = float(((observed.double() - expected) ** 2 / variance).sum())
    return float(chi2.sf(stat, df))


def _draw(chunk, mode="cbow", sampler=None, seed=3, sample=3e-3):
    ids, offsets, counts = chunk
    keep = keep_probabilities(counts, sample)
    sampler = sampler or UnigramSampler(counts, 0.75, K)
    noise = ckernel.alias_table(sampler.probabilities())
    return ckernel.draw_tokens(mode, V, ids, offsets, keep, W, noise, K, seed), keep, sampler


def test_keep_rates_follow_the_subsampling_formula(chunk):
    ids, _, counts = chunk
    d, keep, _ = _draw(chunk)
    kept = torch.bincount(ids[d["kept"]].long(), minlength=V)
    p = keep.double()
    some = (p < 1) & (counts > 0)
    assert some.sum() >= 20  # most words are subsampled at sample=3e-3
    n = counts[some].double()
    assert _p_value(kept[some], n * p[some], n * p[some] * (1 - p[some]), int(some.sum())) > 1e-4
    assert torch.equal(kept[~some], counts[~some])     # keep probability 1: every occurrence kept
    assert d["kept_tokens"] == int(d["kept"].sum())


def test_window_radii_are_uniform_in_one_to_window(chunk):
    d, _, _ = _draw(chunk)
    r = d["radius"][d["kept"]]
    assert int(r.min()) == 1 and int(r.max()) == W
    assert bool((d["radius"][~d["kept"]] == 0).all())
    observed = torch.bincount(r.long(), minlength=W + 1)[1:]
    expected = torch.full((W,), r.shape[0] / W, dtype=torch.float64)
    assert _p_value(observed, expected, expected, W - 1) > 1e-4


@pytest.mark.parametrize("kind", ["unigram", "uniform"])
def test_noise_words_follow_the_samplers_distribution(chunk, kind):
    counts = chunk[2]
    sampler = UnigramSampler(counts, 0.75, K) if kind == "unigram" else UniformSampler(V, K)
    d, _, _ = _draw(chunk, sampler=sampler)
    neg = d["negatives"].reshape(-1)
    assert neg.shape[0] == K * d["targets"].shape[0] > 100_000
    observed = torch.bincount(neg.long(), minlength=V)
    expected = neg.shape[0] * sampler.probabilities().double()
    assert _p_value(observed, expected, expected, V - 1) > 1e-4


@pytest.mark.parametrize("mode", ["cbow", "sg_shared", "sg_pair"])
def test_examples_are_the_references_for_the_same_draws(chunk, mode):
    """Given the kept tokens and radii it drew, the kernel's examples are exactly those
    make_examples builds: windows clipped to the sentence, centres without context skipped, per
    pair skip-gram's pairs in window order; and it counts the loss terms alike."""
    ids, offsets, _ = chunk
    d, _, _ = _draw(chunk, mode=mode)
    sentence = torch.repeat_interleave(torch.arange(offsets.shape[0] - 1), offsets.diff())[d["kept"]]
    kid, eff = ids[d["kept"]], d["radius"][d["kept"]]
    centre = torch.arange(kid.shape[0])
    start = torch.searchsorted(sentence, sentence, side="left")
    end = torch.searchsorted(sentence, sentence, side="right")
    lo, hi = torch.maximum(centre - eff, start), torch.minimum(centre + eff, end - 1)
    rows = hi > lo
    if mode == "sg_pair":
        pos = centre.unsqueeze(1) + torch.cat([torch.arange(-W, 0), torch.arange(1, W + 1)])
        valid = (pos >= lo.unsqueeze(1)) & (pos <= hi.unsqueeze(1))
        assert torch.equal(d["inputs"], kid[pos.clamp(0, kid.shape[0] - 1)][valid])
        assert torch.equal(d["targets"], kid.unsqueeze(1).expand_as(pos)[valid])
        assert d["loss_terms"] == int(valid.sum())
    else:
        assert torch.equal(d["spans"], torch.stack([lo, centre, hi], 1)[rows].to(torch.int32))
        assert torch.equal(d["targets"], kid[rows])
        terms = int((hi - lo)[rows].sum()) if mode == "sg_shared" else int(rows.sum())
        assert d["loss_terms"] == terms


def test_draws_depend_on_the_seed_only(chunk):
    a, b, c = (_draw(chunk, seed=s)[0] for s in (3, 3, 4))
    for key in ("kept", "radius", "spans", "negatives"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["kept"], c["kept"])


def _tables(seed=0, dim=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((V, dim), generator=g) - 0.5) / dim, torch.zeros((V, dim))


def _train(chunk, threads, seed, tables):
    ids, offsets, counts = chunk
    keep = keep_probabilities(counts, 1e-2)
    noise = ckernel.alias_table(UnigramSampler(counts, 0.75, K).probabilities())
    return ckernel.train_tokens(*tables, "cbow", ids, offsets, keep, W, noise, K, 0.05, 0.01, True, threads, seed)


def test_a_seeded_run_is_reproducible(chunk):
    """One thread: bit-identical tables. Two Hogwild threads race on the shared rows, but what
    they draw depends on the seed and the thread count only."""
    one = [_tables() for _ in range(3)]
    runs = [_train(chunk, 1, s, t) for s, t in zip((5, 5, 6), one)]
    assert torch.equal(one[0][0], one[1][0]) and torch.equal(one[0][1], one[1][1])
    assert not torch.equal(one[0][0], one[2][0])
    assert runs[0] == runs[1] and runs[0][1:] != runs[2][1:]
    two = [_train(chunk, 2, 5, _tables()) for _ in range(2)]
    assert two[0][1:] == two[1][1:]
    assert abs(two[0][0] - runs[0][0]) / runs[0][0] < 0.05   # the same objective


def test_bad_input_is_an_error_not_a_crash(chunk):
    ids, offsets, counts = chunk
    keep = keep_probabilities(counts, 1e-2)
    noise = ckernel.alias_table(UnigramSampler(counts, 0.75, K).probabilities())
    bad = ids.clone()
    bad[100] = V
    with pytest.raises(RuntimeError, match="outside the embedding table"):
        ckernel.train_tokens(*_tables(), "cbow", bad, offsets, keep, W, noise, K, 0.05, 0.01, True, 1, 1)
    with pytest.raises(ValueError, match="offsets"):
        ckernel.train_tokens(*_tables(), "cbow", ids, offsets[:-1], keep, W, noise, K, 0.05, 0.01, True, 1, 1)
    with pytest.raises(ValueError, match="noise weights"):
        ckernel.alias_table(torch.zeros(V))


def _subword_index(n_buckets=30, seed=2):
    """Each word's input rows: its own and 0-6 of n_buckets bucket rows (repeats among them)."""
    g = torch.Generator().manual_seed(seed)
    lists = [[w] + (V + torch.randint(0, n_buckets, (int(torch.randint(0, 7, (1,), generator=g)),),
                                      generator=g)).tolist() for w in range(V)]
    offsets = torch.tensor([0] + torch.cumsum(torch.tensor([len(r) for r in lists]), 0).tolist(), dtype=torch.int64)
    return offsets, torch.tensor([r for rs in lists for r in rs], dtype=torch.int32), V + n_buckets


@pytest.mark.parametrize("mode", ["sg_shared", "cbow", "sg_pair"])
@pytest.mark.parametrize("subwords", [False, True])
def test_trains_exactly_the_drawn_examples(chunk, mode, subwords):
    """On one thread at a constant learning rate, training the examples it makes updates the tables
    bit for bit as the chunk kernel does given the same examples (draw_tokens), subwords or not."""
    ids, offsets, counts = chunk
    ids, offsets = ids[:20_000], offsets[offsets <= 20_000]
    offsets = torch.cat([offsets, torch.tensor([20_000])]) if offsets[-1] != 20_000 else offsets
    keep = keep_probabilities(counts, 1e-2)
    noise = ckernel.alias_table(UnigramSampler(counts, 0.75, K).probabilities())
    sub = _subword_index() if subwords else None
    rows = sub[2] if subwords else V
    g = torch.Generator().manual_seed(4)
    start = ((torch.rand((rows, 16), generator=g) - 0.5) / 16, (torch.rand((V, 16), generator=g) - 0.5) / 16)
    mine = [t.clone() for t in start]
    ckernel.train_tokens(*mine, mode, ids, offsets, keep, W, noise, K, 0.05, 0.05, True, 1, 9,
                         subwords=sub[:2] if subwords else None)
    d = ckernel.draw_tokens(mode, V, ids, offsets, keep, W, noise, K, 9)
    theirs = [t.clone() for t in start]
    if mode == "sg_pair":
        ckernel.sgd_chunk(*theirs, mode, d["inputs"], None, d["targets"], d["negatives"], 0.05, 0.05, True, 1,
                          subwords=sub[:2] if subwords else None)
    else:
        ckernel.sgd_chunk(*theirs, mode, None, None, d["targets"], d["negatives"], 0.05, 0.05, True, 1,
                          span_ids=ids[d["kept"]], spans=d["spans"], width=2 * W,
                          subwords=sub[:2] if subwords else None)
    assert d["targets"].shape[0] > 1000
    assert torch.equal(mine[0], theirs[0]) and torch.equal(mine[1], theirs[1])
    assert not torch.equal(mine[0], start[0])


@pytest.mark.parametrize("arch,subwords", [("skipgram", False), ("cbow", False), ("skipgram", True)])
def test_trains_like_the_torch_examples(tmp_path, monkeypatch, arch, subwords):
    """The C kernel on its own examples and on make_examples' (the torch reference) ends an epoch
    at the same loss (a wrong noise distribution or window moves it by far more than 2%) with the
    same number of kept tokens and loss terms (subsampling and windows alike within 1%)."""
    corpus = sample_head(tmp_path / "head.txt", 150_000)
    metrics = {}
    for native in (True, False):
        if not native:
            monkeypatch.setattr(backends.CKernel, "takes_tokens", lambda *a: False)
        model = {"arch": arch, **({"subwords": True, "buckets": 20_000, "dim": 50} if subwords else {})}
        cfg = build_config({"corpus": {"paths": [str(corpus)]}, "output": {"dir": str(tmp_path / str(native))},
                            "model": model, "train": {"threads": 1, "seed": 7, "epochs": 2, "backend": "fused"}})
        metrics[native] = train(cfg, quiet=True)["epochs"][-1]
    new, ref = metrics[True], metrics[False]
    assert abs(new["loss"] - ref["loss"]) < 0.02 * ref["loss"], (new, ref)
    for key in ("effective_words", "examples"):
        assert abs(new[key] - ref[key]) < 0.01 * ref[key], (key, new, ref)
    assert new["words"] == ref["words"]
