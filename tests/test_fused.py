"""The fused C kernel equals the PyTorch step applied one example at a time, and `train.backend`
falls back (auto) or stops (fused) when the kernel cannot be built."""
import logging
import os
from types import SimpleNamespace

import pytest
import torch

from w2v import backends, ckernel, native
from w2v.backends import CKernel
from w2v.batches import Examples
from w2v.config import ConfigError
from w2v.mode import Mode
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives

needs_kernel = pytest.mark.skipif(backends.unavailable_reason(torch.device("cpu")) is not None,
                                  reason="the C kernel cannot be built here (no C compiler?)")

V, D, C, K = 40, 16, 6, 5
MODES = {  # name: (model class, arch, shared negatives, cbow mean)
    "sg_shared": (SkipGramSharedNegatives, "skipgram", True, True),
    "cbow_mean": (CBOW, "cbow", True, True),
    "cbow_sum": (CBOW, "cbow", True, False),
    "sg_pair": (SkipGram, "skipgram", False, True),
}


@pytest.fixture
def one_thread():
    """The reference loop makes thousands of tiny torch calls: intra-op threads only slow them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(mode: str, seed: int = 3, head=None):
    cls, _, _, mean = MODES[mode]
    model = cls(V, D, mean=mean, head=head) if cls is CBOW else cls(V, D, head=head)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(V, D, generator=g) * 0.3)
        model.out_embed.weight.copy_(torch.randn(model.out_embed.weight.shape, generator=g) * 0.3)
    return model


def _hs_head():
    """A Huffman tree over V words with steeply falling counts: paths from 1 to over 10 nodes long."""
    import numpy as np
    from w2v.heads import HierarchicalSoftmaxHead
    from w2v.huffman import huffman_tree
    return HierarchicalSoftmaxHead(huffman_tree((1.5 ** np.arange(V, 0, -1)).astype(np.int64)))


def _examples(mode: str, n: int, seed: int = 5) -> Examples:
    """Random examples with repeated rows, masked context slots and noise words equal to the centre."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, V, (n,), generator=g)
    negatives = torch.randint(0, V, (n, K), generator=g)
    negatives[::4, 1] = targets[::4]                    # skipped, as word2vec.c skips them
    if mode == "sg_pair":
        return Examples(torch.randint(0, 8, (n,), generator=g), None, targets, negatives, n, n)
    inputs = torch.randint(0, 8, (n, C), generator=g)   # few distinct context words: shared rows
    mask = torch.rand(n, C, generator=g) < 0.6
    mask[:, 0] = True                                   # make_examples keeps only centres with context
    mask[1] = False                                     # ... but the step must cope with none too
    mask[1, 2] = True
    inputs[2, :] = inputs[2, 0]                         # one word filling the whole window
    return Examples(inputs, mask, targets, negatives, n, n)


def _reference(model, ex: Examples, lr0: float, lr1: float) -> float:
    """The PyTorch step with batch size 1, learning rate interpolated per example."""
    loss, n = 0.0, len(ex)
    for i in range(n):
        loss += float(model.sgd_step(*ex.batch(i, i + 1), lr0 + (lr1 - lr0) * i / n))
    return loss


@needs_kernel
@pytest.mark.parametrize("mode", list(MODES))
def test_kernel_equals_torch_step_one_example_at_a_time(mode, one_thread):
    _, arch, shared, mean = MODES[mode]
    ex = _examples(mode, 120)
    ref, ker = _model(mode), _model(mode)
    untrained = ker.in_embed.weight.detach().clone()
    loss_ref = _reference(ref, ex, 0.2, 0.02)
    loss = CKernel(1).train_chunk(ker, ex, 0.2, 0.02)
    assert loss.dtype == torch.float64 and loss.dim() == 0
    assert loss.item() == pytest.approx(loss_ref, rel=1e-5)
    assert torch.allclose(ker.in_embed.weight, ref.in_embed.weight, atol=1e-5)
    assert torch.allclose(ker.out_embed.weight, ref.out_embed.weight, atol=1e-5)
    assert not torch.allclose(ker.in_embed.weight, untrained, atol=1e-3)    # it did train


@needs_kernel
@pytest.mark.parametrize("mode", list(MODES))
def test_hs_kernel_equals_torch_step_one_example_at_a_time(mode, one_thread):
    """Hierarchical softmax: each example walks its centre word's path in the tree (V - 1 output
    rows, no noise words), as the PyTorch step with batch size 1 does over the padded path."""
    ex = _examples(mode, 120)
    ex.negatives = ex.negatives[:, :0].to(torch.int32)   # what NoNegatives draws
    head = _hs_head()
    assert int(head.lengths.min()) <= 2 and int(head.lengths.max()) >= 10
    ref, ker = _model(mode, head=head), _model(mode, head=_hs_head())
    assert ker.out_embed.weight.shape == (V - 1, D)
    untrained = ker.out_embed.weight.detach().clone()
    loss_ref = _reference(ref, ex, 0.2, 0.02)
    loss = CKernel(1).train_chunk(ker, ex, 0.2, 0.02)
    assert loss.item() == pytest.approx(loss_ref, rel=1e-5)
    assert torch.allclose(ker.in_embed.weight, ref.in_embed.weight, atol=1e-5)
    assert torch.allclose(ker.out_embed.weight, ref.out_embed.weight, atol=1e-5)
    assert not torch.allclose(ker.out_embed.weight, untrained, atol=1e-3)    # it did train


@needs_kernel
def test_hs_kernel_checks_the_tree_and_the_tables():
    """A tree that does not fit the tables, noise ids beside a tree, or a path outside the output
    table are errors, not out-of-bounds writes."""
    head = _hs_head()
    model = _model("sg_pair", head=head)
    in_w, out_w = model.in_embed.weight.data, model.out_embed.weight.data
    ex = _examples("sg_pair", 10)
    none = ex.negatives[:, :0]
    args = ("sg_pair", ex.inputs, None, ex.targets)
    with pytest.raises(ValueError, match=r"output table must be \[39, 16\]"):
        ckernel.sgd_chunk(in_w, torch.zeros(V, D), *args, none, 0.1, 0.1, True, 1, tree=head.kernel_tree())
    with pytest.raises(ValueError, match=r"output table must be \[40, 16\]"):
        ckernel.sgd_chunk(in_w, out_w, *args, none, 0.1, 0.1, True, 1)
    with pytest.raises(ValueError, match="no noise words"):
        ckernel.sgd_chunk(in_w, out_w, *args, ex.negatives, 0.1, 0.1, True, 1, tree=head.kernel_tree())
    points, labels, lengths = head.kernel_tree()
    bad = points.clone()
    bad[ex.targets[3], 0] = V - 1        # one past the last inner node
    with pytest.raises(RuntimeError, match="outside the embedding table"):
        ckernel.sgd_chunk(in_w, out_w, *args, none, 0.1, 0.1, True, 1, tree=(bad, labels, lengths))


@needs_kernel
def test_learning_rate_is_interpolated_across_the_chunk(one_thread):
    """Against a reference with the rate held at lr0, the tables differ: i / N is used."""
    ex = _examples("cbow_mean", 80)
    flat, ker = _model("cbow_mean"), _model("cbow_mean")
    _reference(flat, ex, 0.2, 0.2)
    CKernel(1).train_chunk(ker, ex, 0.2, 0.02)
    assert not torch.allclose(ker.out_embed.weight, flat.out_embed.weight, atol=1e-3)


@needs_kernel
def test_large_scores_give_finite_loss_and_gradient():
    """Scores of +-200 saturate the sigmoid: the loss is the score itself, never inf or nan."""
    model = _model("sg_pair")
    with torch.no_grad():
        model.in_embed.weight.fill_(4.0)
        model.out_embed.weight.fill_(-2.5)               # every score is -2.5 * 4 * 16 = -160
    ex = Examples(torch.tensor([1]), None, torch.tensor([2]), torch.tensor([[3, 4, 5, 6, 7]]), 1, 1)
    loss = CKernel(1).train_chunk(model, ex, 0.01, 0.01)
    assert loss.item() == pytest.approx(160.0, rel=1e-5)   # -log sigmoid(-160) ~ 160; noise terms ~ 0
    assert torch.isfinite(model.in_embed.weight).all()


@needs_kernel
@pytest.mark.parametrize("mode", ["sg_shared", "cbow_mean"])
def test_hogwild_threads_train_like_one_thread(mode):
    """Two threads split the chunk and update the same tables without locks: the result is not
    bit-equal to one thread, but the loss and the tables agree closely."""
    _, arch, shared, mean = MODES[mode]
    big_v = 5000
    g = torch.Generator().manual_seed(0)
    n = 4000
    ex = Examples(torch.randint(0, big_v, (n, C), generator=g), torch.rand(n, C, generator=g) < 0.7,
                  torch.randint(0, big_v, (n,), generator=g), torch.randint(0, big_v, (n, K), generator=g), n, n)
    ex.mask[:, 0] = True
    results, start = [], None
    for threads in (1, 1, 2):
        model = SkipGramSharedNegatives(big_v, D, torch.Generator().manual_seed(1)) if arch == "skipgram" \
            else CBOW(big_v, D, torch.Generator().manual_seed(1))
        with torch.no_grad():
            model.out_embed.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        start = model.in_embed.weight.detach().clone()
        loss = CKernel(threads).train_chunk(model, ex, 0.05, 0.01)
        results.append((loss.item(), model.in_embed.weight.detach().clone()))
    (l1, w1), (l1b, w1b), (l2, w2) = results
    assert l1 == l1b and torch.equal(w1, w1b)          # one thread: deterministic
    assert l2 == pytest.approx(l1, rel=1e-3)
    # Which thread touches a shared row first is up to the scheduler: the tables may differ, but
    # by a small part of what training changed (about 1% here; a lost update would be far more).
    assert (w2 - w1).norm() < 0.05 * (w1 - start).norm()


@needs_kernel
def test_bad_word_id_is_an_error_not_a_crash():
    model = _model("sg_pair")
    ex = Examples(torch.tensor([1, V + 3]), None, torch.tensor([2, 2]), torch.zeros(2, K, dtype=torch.int64), 2, 2)
    with pytest.raises(RuntimeError, match="outside the embedding table"):
        CKernel(1).train_chunk(model, ex, 0.01, 0.01)


@pytest.fixture
def fresh_kernel(tmp_path, monkeypatch):
    """An empty kernel cache and a forgotten kernel; the real one is reloaded afterwards."""
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "cache"))
    ckernel.reset()
    yield tmp_path / "cache"
    monkeypatch.undo()
    ckernel.reset()


@pytest.mark.parametrize("cc", ["/nonexistent/cc", "false"])
def test_no_compiler_falls_back_under_auto_and_stops_under_fused(fresh_kernel, monkeypatch, caplog, cc):
    monkeypatch.setenv("CC", cc)   # 'false': a compiler that fails every compile
    cpu = torch.device("cpu")
    with caplog.at_level(logging.INFO, logger="w2v"):
        assert backends.resolve_backend("auto", cpu) == "torch"
    assert "fused kernel is unavailable" in caplog.text
    assert ("no C compiler" if cc.startswith("/") else "compiling the C kernel failed") in caplog.text
    with pytest.raises(ConfigError, match="train.backend is 'fused'.*use 'auto' or 'torch'"):
        backends.resolve_backend("fused", cpu)
    assert backends.resolve_backend("torch", cpu) == "torch"
    assert not list(fresh_kernel.glob("*.so"))          # nothing half-written left in the cache


@needs_kernel
def test_compiled_kernel_is_cached_and_reused(fresh_kernel, monkeypatch):
    ckernel.load()
    built = list(fresh_kernel.glob("*.so"))
    assert len(built) == 1 and not list(fresh_kernel.glob(".*"))   # no temporary files left
    mtime = os.stat(built[0]).st_mtime_ns
    ckernel.reset()

    def no_compiling(*args, **kwargs):
        raise AssertionError("recompiled although the cache holds the kernel")
    monkeypatch.setattr(native.subprocess, "run", no_compiling)
    ckernel.load()
    assert list(fresh_kernel.glob("*.so")) == built and os.stat(built[0]).st_mtime_ns == mtime


def test_settings_the_kernels_do_not_implement_use_the_torch_step():
    """logQ and DNS need the batched step: `auto` takes it, `fused` is refused naming the key;
    hierarchical softmax runs on the kernels."""
    from w2v.config import build_config
    from w2v.heads import build_head
    from w2v.samplers import build_sampler, logit_correction
    from w2v.subsample import keep_probabilities
    from w2v.core import build_model
    cpu = torch.device("cpu")
    counts = torch.arange(60, 0, -1)

    def reason(**model):
        cfg = build_config({"corpus": {"paths": ["x"]}, "model": model})
        sampler = build_sampler(cfg.model, counts, keep_probabilities(counts, cfg.model.sample), 64)
        head = build_head(cfg.model, counts.numpy(), logit_correction(cfg.model, sampler))
        return backends.torch_only_reason(build_model(cfg, len(counts), torch.Generator(), head), sampler)

    assert reason() is None
    assert reason(sampler="in_batch") is None and reason(sampler="shared") is None
    assert reason(loss="hs") is None and reason(loss="hs", arch="cbow") is None
    for settings, key in (({"sampler": "in_batch", "logq_correction": True}, "model.logq_correction"),
                          ({"sampler": "dns"}, "model.sampler")):
        why = reason(**settings)
        assert why is not None and key in why
        assert backends.resolve_backend("auto", cpu, why) == "torch"
        with pytest.raises(ConfigError, match=key):
            backends.resolve_backend("fused", cpu, why)


def _chunk(arch: str, shared: bool, spans: bool, seed: int = 11):
    """One chunk of the shipped sample made by make_examples, dense or as spans, same draws."""
    import numpy as np
    from w2v.batches import make_examples
    from w2v.corpus import EncodedCorpus
    from w2v.samplers import UnigramSampler
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, size=300)
    ids = rng.integers(0, V, size=int(lengths.sum())).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    corpus = EncodedCorpus(ids, offsets, len(ids))
    keep = torch.full((V,), 0.8)
    sampler = UnigramSampler(torch.arange(1, V + 1), 0.75, K)
    mode = Mode.of(SimpleNamespace(arch=arch, shared_negatives=shared))
    return make_examples(corpus, 0, 300, mode, 3, keep, sampler, torch.Generator().manual_seed(seed),
                         torch.device("cpu"), spans=spans)


@pytest.mark.parametrize("arch,shared", [("skipgram", True), ("cbow", True)])
def test_spans_are_the_dense_examples(arch, shared):
    """Expanding each span (lo, centre, hi) gives the dense form's context ids, in its order."""
    dense, sp = _chunk(arch, shared, False), _chunk(arch, shared, True)
    assert torch.equal(sp.targets, dense.targets) and torch.equal(sp.negatives, dense.negatives)
    assert (sp.kept_tokens, sp.loss_terms) == (dense.kept_tokens, dense.loss_terms)
    for i, (lo, centre, hi) in enumerate(sp.spans.tolist()):
        expanded = [int(sp.ids[p]) for p in range(lo, hi + 1) if p != centre]
        assert expanded == dense.inputs[i][dense.mask[i]].tolist()


@needs_kernel
@pytest.mark.parametrize("arch,shared", [("skipgram", True), ("cbow", True)])
def test_kernel_on_spans_equals_kernel_on_dense_examples(arch, shared):
    """One thread, same chunk: the tables and the loss come out bit for bit the same."""
    mode = "sg_shared" if arch == "skipgram" else "cbow_mean"
    assert_spans_train_as_dense(lambda: _model(mode), arch, shared)


def assert_spans_train_as_dense(make_model, arch: str, shared: bool):
    """The kernel trains two models from `make_model` on one chunk, dense and as spans: equal bit
    for bit, and trained."""
    a, b = make_model(), make_model()
    loss_a = CKernel(1).train_chunk(a, _chunk(arch, shared, False), 0.1, 0.05)
    loss_b = CKernel(1).train_chunk(b, _chunk(arch, shared, True), 0.1, 0.05)
    assert float(loss_a) == float(loss_b)
    assert torch.equal(a.in_embed.weight, b.in_embed.weight) and torch.equal(a.out_embed.weight, b.out_embed.weight)
    assert not torch.equal(a.in_embed.weight, make_model().in_embed.weight)


@needs_kernel
def test_kernel_refuses_spans_outside_the_chunk():
    ex = _chunk("cbow", True, True)
    bad = ex.spans.clone()
    bad[3, 2] = ex.ids.shape[0]
    with pytest.raises(ValueError, match="outside span_ids"):
        ckernel.sgd_chunk(_model("cbow_mean").in_embed.weight.data, _model("cbow_mean").out_embed.weight.data,
                            "cbow", None, None, ex.targets, ex.negatives, 0.1, 0.1, True, 1,
                            span_ids=ex.ids, spans=bad, width=ex.width)
    bad = ex.spans.clone()
    bad[3, 1] = bad[3, 2] + 1   # the centre outside its own span
    with pytest.raises(RuntimeError, match="outside the embedding table"):
        ckernel.sgd_chunk(_model("cbow_mean").in_embed.weight.data, _model("cbow_mean").out_embed.weight.data,
                            "cbow", None, None, ex.targets, ex.negatives, 0.1, 0.1, True, 1,
                            span_ids=ex.ids, spans=bad, width=ex.width)
