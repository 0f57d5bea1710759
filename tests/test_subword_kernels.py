"""The C and Triton kernels train a subword (fastText) model as the PyTorch step does, one example at
a time: a word's input is the mean of its CSR rows (CBOW: one bag of all its context words' rows),
and the gradient goes in full to each of those rows.

The Triton kernel runs in Triton's interpreter on a machine without CUDA (see test_triton_sgd.py)."""
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

DEVICE = os.environ.get("W2V_TEST_DEVICE", "cpu")
if DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"   # read by triton.jit when the module is imported

from w2v import backends, ckernel  # noqa: E402
from w2v.backends import CKernel  # noqa: E402
from w2v.batches import Examples  # noqa: E402
from w2v.heads import HierarchicalSoftmaxHead  # noqa: E402
from w2v.huffman import huffman_tree  # noqa: E402
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives  # noqa: E402
from w2v.subwords import SubwordIndex  # noqa: E402

from tests.test_fused import _reference, assert_spans_train_as_dense, one_thread  # noqa: E402,F401 (a fixture)

needs_kernel = pytest.mark.skipif(backends.unavailable_reason(torch.device("cpu")) is not None,
                                  reason="the C kernel cannot be built here (no C compiler?)")

V, D, C, K, BUCKETS = 40, 12, 6, 4, 25
MODES = {  # name: (model class, cbow mean)
    "sg_shared": (SkipGramSharedNegatives, True),
    "cbow_mean": (CBOW, True),
    "cbow_sum": (CBOW, False),
    "sg_pair": (SkipGram, True),
}


def _csr():
    """Rows per word 0..7 (word 5: none at all, word 7: only its own row), bucket rows shared by
    several words, and word 9 holding the same bucket twice (fastText keeps repeats)."""
    g = torch.Generator().manual_seed(0)
    lists = []
    for w in range(V):
        n = int(torch.randint(0, 7, (1,), generator=g))
        lists.append([w] + (V + torch.randint(0, BUCKETS, (n,), generator=g)).tolist())
    lists[5], lists[7], lists[9] = [], [7], [9, V + 3, V + 3, V + 11]
    lists[11] = [11, V + 3, V + 11]      # shares both of word 9's buckets
    offsets = torch.tensor([0] + np.cumsum([len(r) for r in lists]).tolist(), dtype=torch.int64)
    rows = torch.tensor([r for rs in lists for r in rs], dtype=torch.int32)
    return SimpleNamespace(n_rows=V + BUCKETS, offsets=offsets, rows=rows)


def _head(hs: bool):
    """A Huffman tree over V words with steeply falling counts (paths 1 to 10+ nodes), or NS."""
    return HierarchicalSoftmaxHead(huffman_tree((1.5 ** np.arange(V, 0, -1)).astype(np.int64))) if hs else None


def _model(mode: str, hs: bool = False, subwords=None, seed: int = 3, device: str = "cpu"):
    cls, mean = MODES[mode]
    subwords = subwords if subwords is not None else _csr()
    kw = {"mean": mean} if cls is CBOW else {}
    model = cls(V, D, head=_head(hs), subwords=subwords, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(model.in_embed.weight.shape, generator=g) * 0.3)
        model.out_embed.weight.copy_(torch.randn(model.out_embed.weight.shape, generator=g) * 0.3)
    return model.to(device)


def _examples(mode: str, n: int, hs: bool = False, seed: int = 5) -> Examples:
    """Random examples over all words (the row-less word 5 and the shared-bucket words 9 and 11
    among them), masked context slots, repeated context words, noise words equal to the centre."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, V, (n,), generator=g)
    negatives = torch.randint(0, V, (n, K), generator=g)
    negatives[::4, 1] = targets[::4]
    if hs:
        negatives = negatives[:, :0]
    pool = torch.tensor([5, 7, 9, 11, 0, 1, 2, 3, 20, 33])   # few distinct words: rows shared between examples
    if mode == "sg_pair":
        return Examples(pool[torch.randint(0, len(pool), (n,), generator=g)], None, targets, negatives, n, n)
    inputs = pool[torch.randint(0, len(pool), (n, C), generator=g)]
    mask = torch.rand(n, C, generator=g) < 0.6
    mask[:, 0] = True
    inputs[2, :] = 9                                      # one word filling the whole window
    inputs[3, 0], mask[3] = 5, False                      # only the row-less word: an empty bag
    mask[3, 0] = True
    return Examples(inputs, mask, targets, negatives, n, n)


def _assert_same(ker, ref, loss, loss_ref):
    assert loss.dtype == torch.float64 and loss.dim() == 0
    assert loss.item() == pytest.approx(loss_ref, rel=1e-5)
    assert torch.allclose(ker.in_embed.weight.cpu(), ref.in_embed.weight.cpu(), atol=1e-5)
    assert torch.allclose(ker.out_embed.weight.cpu(), ref.out_embed.weight.cpu(), atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("hs", [False, True], ids=["ns", "hs"])
@pytest.mark.parametrize("mode", list(MODES))
def test_c_kernel_equals_torch_step_with_subwords(mode, hs, one_thread):
    ex = _examples(mode, 120, hs)
    ref, ker = _model(mode, hs), _model(mode, hs)
    untrained = ker.in_embed.weight.detach().clone()
    loss_ref = _reference(ref, ex, 0.2, 0.02)
    loss = CKernel(1).train_chunk(ker, ex, 0.2, 0.02)
    _assert_same(ker, ref, loss, loss_ref)
    moved = (ker.in_embed.weight - untrained).abs().sum(1) > 0
    assert moved[V:].sum() >= 5 and moved[[9, 11, V + 3, V + 11]].all()   # bucket rows trained
    assert not moved[5]                 # a word with no rows has no row to train


@needs_kernel
@pytest.mark.parametrize("mode", ["sg_shared", "cbow_mean", "sg_pair"])
def test_c_kernel_equals_torch_step_on_real_ngrams(mode, one_thread):
    """A SubwordIndex of real words and few buckets (so n-grams collide) instead of a hand-built CSR."""
    words = ["w%d%s" % (i, "abcdefgh"[: i % 9]) for i in range(V)]
    index = SubwordIndex(words, 2, 4, BUCKETS)
    assert int((index.offsets[1:] - index.offsets[:-1]).max()) > 10
    ex = _examples(mode, 80)
    ref, ker = _model(mode, subwords=index), _model(mode, subwords=index)
    loss_ref = _reference(ref, ex, 0.1, 0.05)
    _assert_same(ker, ref, CKernel(1).train_chunk(ker, ex, 0.1, 0.05), loss_ref)


@needs_kernel
@pytest.mark.parametrize("mode", list(MODES))
def test_own_rows_only_is_the_word_model(mode):
    """Every word with its own row alone: bit for bit the word kernel's update."""
    from w2v.subwords import SubwordIndex as Index
    own = Index([f"w{i}" for i in range(V)], 3, 0, 1)      # maxn 0: no n-grams
    assert torch.equal(own.rows, torch.arange(V, dtype=torch.int32))
    ex = _examples(mode, 100)
    word, sub = _model(mode, subwords=own), _model(mode, subwords=own)
    word.sub_offsets = word.sub_rows = None                  # the same tables, read as a word model
    assert word.subwords is None
    a, b = CKernel(1).train_chunk(word, ex, 0.2, 0.02), CKernel(1).train_chunk(sub, ex, 0.2, 0.02)
    assert float(a) == float(b)
    assert torch.equal(word.in_embed.weight, sub.in_embed.weight)
    assert torch.equal(word.out_embed.weight, sub.out_embed.weight)


@needs_kernel
@pytest.mark.parametrize("mode", ["sg_shared", "cbow_mean"])
def test_spans_equal_dense_examples_with_subwords(mode):
    """The spans form the CKernel trains windowed examples in gives the dense form's tables."""
    assert_spans_train_as_dense(lambda: _model(mode), "skipgram" if mode == "sg_shared" else "cbow", True)


@needs_kernel
def test_malformed_subword_lists_are_errors_not_crashes():
    model = _model("sg_pair")
    in_w, out_w = model.in_embed.weight.data, model.out_embed.weight.data
    ex = _examples("sg_pair", 10)
    offsets, rows = model.subwords

    def train(off, rws):
        return ckernel.sgd_chunk(in_w, out_w, "sg_pair", ex.inputs, None, ex.targets, ex.negatives,
                                 0.1, 0.1, True, 1, subwords=(off, rws))
    bad = rows.clone()
    bad[offsets[int(ex.inputs[4])]] = V + BUCKETS          # one past the input table
    with pytest.raises(RuntimeError, match="outside the embedding table"):
        train(offsets, bad)
    with pytest.raises(RuntimeError, match="subword list"):
        train(offsets, rows[:int(offsets[int(ex.inputs.max()) + 1]) - 1])   # offsets reach past rows
    with pytest.raises(TypeError, match="subword offsets"):
        train(offsets.float(), rows)
    with pytest.raises(ValueError, match=r"offsets \[V \+ 1\] and rows \[nnz\]"):
        train(offsets[None], rows)
    with pytest.raises(ValueError, match=r"output table must be \[40, 12\]"):
        ckernel.sgd_chunk(in_w, torch.zeros(V + BUCKETS, D), "sg_pair", ex.inputs, None, ex.targets,
                          ex.negatives, 0.1, 0.1, True, 1, subwords=(offsets, rows))


@needs_kernel
@pytest.mark.parametrize("mode", ["sg_shared", "cbow_mean"])
def test_hogwild_threads_train_like_one_thread_with_subwords(mode):
    """Two threads updating shared n-gram rows without locks agree closely with one thread."""
    big_v, n = 3000, 3000
    g = torch.Generator().manual_seed(0)
    letters = torch.randint(0, 26, (big_v, 7), generator=g).tolist()   # random words: some n-grams shared
    index = SubwordIndex(["".join(chr(97 + c) for c in w[: 3 + i % 5]) for i, w in enumerate(letters)], 3, 5, 20000)
    ex = Examples(torch.randint(0, big_v, (n, C), generator=g), torch.rand(n, C, generator=g) < 0.7,
                  torch.randint(0, big_v, (n,), generator=g), torch.randint(0, big_v, (n, K), generator=g), n, n)
    ex.mask[:, 0] = True
    cls = SkipGramSharedNegatives if mode == "sg_shared" else CBOW
    results = []
    for threads in (1, 2):
        model = cls(big_v, D, torch.Generator().manual_seed(1), subwords=index)
        with torch.no_grad():
            model.out_embed.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        start = model.in_embed.weight.detach().clone()
        loss = CKernel(threads).train_chunk(model, ex, 0.05, 0.01)
        results.append((loss.item(), model.in_embed.weight.detach().clone()))
    (l1, w1), (l2, w2) = results
    assert l2 == pytest.approx(l1, rel=1e-3)
    assert (w2 - w1).norm() < 0.05 * (w1 - start).norm()


@needs_kernel
@pytest.mark.parametrize("arch", ["skipgram", "cbow"])
def test_training_a_subword_model_on_the_c_kernel_learns(arch, tmp_path, caplog):
    """Through train_tables with train.backend fused: the kernel is chosen, the loss falls epoch by
    epoch, and words sharing n-grams (and contexts) end up closer than unrelated words."""
    import logging
    from w2v.config import build_config
    from w2v.core import train_tables
    from w2v.corpus import EncodedCorpus
    from w2v.vocab import Vocab
    rng = np.random.default_rng(0)
    # Two topics; within a topic the words are inflections of one stem (shared n-grams).
    topics = [["walk", "walks", "walked", "walking", "walker"], ["sing", "sings", "singer", "singing", "sang"]]
    words = topics[0] + topics[1]
    sents = [rng.choice(5, size=12) + 5 * (i % 2) for i in range(600)]
    ids = np.concatenate(sents).astype(np.int32)
    offsets = np.arange(0, len(ids) + 1, 12, dtype=np.int64)
    counts = np.bincount(ids, minlength=len(words))
    order = np.argsort(-counts, kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    vocab = Vocab([words[i] for i in order], counts[order].astype(np.int64))
    corpus = EncodedCorpus(remap[ids].astype(np.int32), offsets, len(ids))
    cfg = build_config({"corpus": {"paths": ["x"]}, "vocab": {"min_count": 1},
                        "model": {"arch": arch, "dim": 16, "window": 3, "negative": 3, "sample": 0,
                                  "subwords": True, "minn": 3, "maxn": 4, "buckets": 500},
                        "train": {"epochs": 4, "alpha": 0.05, "threads": 1, "backend": "fused", "seed": 1},
                        "output": {"dir": str(tmp_path)}})
    with caplog.at_level(logging.INFO, logger="w2v"):
        result = train_tables(cfg, vocab, corpus, quiet=True)
    assert "backend: fused" in caplog.text
    losses = [row["loss"] for row in result.metrics]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    vec = torch.nn.functional.normalize(result.vectors, dim=1)
    index = {w: i for i, w in enumerate(vocab.words)}
    same = float(vec[index["walks"]] @ vec[index["walked"]])
    other = float(vec[index["walks"]] @ vec[index["singer"]])
    assert same > other + 0.3


# ---- Triton ----------------------------------------------------------------------------------

def _triton():
    pytest.importorskip("triton")
    import importlib
    import w2v.triton_sgd as triton_sgd
    return importlib.reload(triton_sgd)   # another test may have imported it without the interpreter


@pytest.mark.skipif(DEVICE != "cpu", reason="compiled, programs sharing rows run at once; the interpreter "
                                             "runs them in order, as the sequential reference does")
@pytest.mark.parametrize("hs", [False, True], ids=["ns", "hs"])
@pytest.mark.parametrize("mode", list(MODES))
def test_triton_kernel_equals_torch_step_with_subwords(mode, hs, one_thread):
    _triton()
    from w2v.backends import TritonKernel
    ex = _examples(mode, 24 if not hs else 12, hs)
    ref, ker = _model(mode, hs), _model(mode, hs)
    loss_ref = _reference(ref, ex, 0.2, 0.05)
    loss = TritonKernel().train_chunk(ker, ex, 0.2, 0.05)
    _assert_same(ker, ref, loss, loss_ref)
    assert not torch.equal(ker.in_embed.weight[V:], _model(mode, hs).in_embed.weight[V:])
