"""The Triton kernel makes the same update as the PyTorch step applied one example at a time.

On a machine without CUDA the kernel runs in Triton's interpreter (TRITON_INTERPRET=1), so the
same kernel code is checked on the CPU; on a GPU (W2V_TEST_DEVICE=cuda) it runs compiled."""
import importlib
import os

import pytest
import torch

DEVICE = os.environ.get("W2V_TEST_DEVICE", "cpu")
if DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"   # read by triton.jit when the module is imported
pytest.importorskip("triton")

import w2v.triton_sgd as triton_sgd  # noqa: E402
from w2v.backends import TritonKernel  # noqa: E402
from w2v.batches import Examples  # noqa: E402
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives  # noqa: E402

triton_sgd = importlib.reload(triton_sgd)  # another test may have imported it without the interpreter


def _model(cls, V, D, seed, **kw):
    m = cls(V, D, **kw).to(DEVICE)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.in_embed.weight.copy_(torch.randn(V, D, generator=g) * 0.3)
        m.out_embed.weight.copy_(torch.randn(m.out_embed.weight.shape, generator=g) * 0.3)
    return m


def _examples(n, V, C, K, seed, windowed=True, distinct=False):
    """Random examples; rows are heavily reused (as frequent words are) unless `distinct`, where no
    row is touched by two examples, so that even concurrent (Hogwild) programs agree exactly."""
    g = torch.Generator().manual_seed(seed)
    if distinct:
        ids = torch.randperm(V, generator=g)[: n * (1 + K + C)].view(n, -1)
        targets, negatives, inputs = ids[:, 0].clone(), ids[:, 1:1 + K].clone(), ids[:, 1 + K:].clone()
    else:
        targets = torch.randint(0, V, (n,), generator=g)
        negatives = torch.randint(0, V, (n, K), generator=g)
        inputs = torch.randint(0, 12, (n, C), generator=g)
    negatives[::3, 1] = targets[::3]           # noise words equal to the positive are skipped
    if not windowed:
        return Examples(inputs[:, 0].clone(), None, targets, negatives, n, n)
    mask = torch.rand(n, C, generator=g) < 0.7
    mask[:, 0] = True
    return Examples(inputs, mask, targets, negatives, n, n)


def _to(ex, ids=torch.int64):
    """On DEVICE, word ids as `ids` (make_examples gives int32)."""
    def move(t):
        return None if t is None else t.to(DEVICE, dtype=ids if t.dtype == torch.int64 else t.dtype)
    return Examples(*(move(t) for t in (ex.inputs, ex.mask, ex.targets, ex.negatives)),
                    ex.kept_tokens, ex.loss_terms)


def _sequential_reference(model, ex, lr0, lr1):
    """The PyTorch sgd_step on one example at a time, lr linear over the chunk."""
    n, loss = len(ex), 0.0
    for i in range(n):
        lr = lr0 + (lr1 - lr0) * i / n
        loss += float(model.sgd_step(*ex.batch(i, i + 1), lr))
    return loss


# (model class, arch, constructor arguments, windowed examples) for every mode the kernel trains
MODELS = [
    (SkipGramSharedNegatives, "skipgram", {}, True),
    (CBOW, "cbow", {"mean": True}, True),
    (CBOW, "cbow", {"mean": False}, True),
    (SkipGram, "skipgram", {}, False),
]


@pytest.mark.parametrize("cls,arch,kw,windowed", MODELS)
@pytest.mark.parametrize("ids", [torch.int64, torch.int32], ids=["int64", "int32"])
def test_kernel_equals_sequential_torch_step(cls, arch, kw, windowed, ids):
    V, D, C, K, n = 40, 20, 6, 5, 24       # D not a power of two: the padded lanes must stay unused
    # Compiled on a GPU the programs run at once, so only examples with disjoint rows must agree
    # exactly; the interpreter runs them in order, so there rows are shared, as in real text.
    on_gpu = DEVICE != "cpu"
    V = 24 * 12 if on_gpu else V
    ex = _examples(n, V, C, K, seed=3, windowed=windowed, distinct=on_gpu)
    ref, fused = _model(cls, V, D, 1, **kw), _model(cls, V, D, 1, **kw)
    ref_ex = _to(ex)
    loss_ref = _sequential_reference(ref, ref_ex, 0.2, 0.05)
    loss = TritonKernel().train_chunk(fused, _to(ex, ids), lr_start=0.2, lr_end=0.05)
    assert loss.dtype == torch.float64 and loss.dim() == 0
    assert abs(float(loss) - loss_ref) < 1e-4 * max(1.0, abs(loss_ref))
    assert torch.allclose(fused.in_embed.weight, ref.in_embed.weight, atol=1e-5)
    assert torch.allclose(fused.out_embed.weight, ref.out_embed.weight, atol=1e-5)
    assert not torch.allclose(fused.out_embed.weight, _model(cls, V, D, 1, **kw).out_embed.weight)


@pytest.mark.parametrize("cls,arch,kw,windowed", MODELS)
@pytest.mark.skipif(DEVICE != "cpu", reason="compiled, the programs run at once and all write the root, "
                                             "so only the interpreter's sequential order must agree exactly")
def test_hs_kernel_equals_sequential_torch_step(cls, arch, kw, windowed):
    """Hierarchical softmax: each program walks its centre word's Huffman path (V - 1 output rows,
    paths of 2 to 22 nodes, no noise words), as the PyTorch step with batch size 1 does."""
    import numpy as np
    from w2v.heads import HierarchicalSoftmaxHead
    from w2v.huffman import huffman_tree
    V, D, C, n = 40, 20, 6, 16
    counts = (1.5 ** np.arange(V, 0, -1)).astype(np.int64)

    def model():
        return _model(cls, V, D, 1, head=HierarchicalSoftmaxHead(huffman_tree(counts)), **kw)
    ex = _examples(n, V, C, 2, seed=3, windowed=windowed)
    ex.negatives = ex.negatives[:, :0]
    ref, fused = model(), model()
    assert fused.out_embed.weight.shape == (V - 1, D) and int(fused.head.lengths.max()) > 16
    loss_ref = _sequential_reference(ref, _to(ex), 0.2, 0.05)
    loss = TritonKernel().train_chunk(fused, _to(ex, torch.int32), lr_start=0.2, lr_end=0.05)
    assert abs(float(loss) - loss_ref) < 1e-4 * max(1.0, abs(loss_ref))
    assert torch.allclose(fused.in_embed.weight, ref.in_embed.weight, atol=1e-5)
    assert torch.allclose(fused.out_embed.weight, ref.out_embed.weight, atol=1e-5)
    assert not torch.allclose(fused.out_embed.weight, model().out_embed.weight)


def test_learning_rate_is_interpolated_over_the_chunk():
    """lr0 for the first example, lr1 toward the last: with lr0 = 0 the first example changes nothing."""
    V, D, C, K = 30, 8, 4, 3
    ex = _to(_examples(1, V, C, K, seed=4))
    m = _model(SkipGramSharedNegatives, V, D, 2)
    before = m.in_embed.weight.clone()
    TritonKernel().train_chunk(m, ex, lr_start=0.0, lr_end=1.0)
    assert torch.equal(m.in_embed.weight, before)


def test_a_small_vocabulary_is_trained_in_several_launches(monkeypatch):
    """On a GPU a launch's programs run at once and read each other's rows stale; a 40-word vocabulary
    trained in one launch diverged on an H100. Launches must stay within examples_in_flight, cover
    every example once, in order, and still give the sequential result (checked above)."""
    assert triton_sgd.examples_in_flight(73_000, 16) >= 16_000      # a real vocabulary: no limit in practice
    assert triton_sgd.examples_in_flight(40, 12) == 16
    # Hierarchical softmax: the root is in every example, so its cap holds whatever the vocabulary.
    from w2v.heads import HierarchicalSoftmaxHead
    assert triton_sgd.hs_in_flight(73_000, 40) == HierarchicalSoftmaxHead.max_batch // 16 * 16
    launches, kernel = [], triton_sgd._window_kernel

    class Recorder:
        def __getitem__(self, grid):
            def launch(*args, **kw):
                launches.append((args[10], grid[0]))   # (start, programs)
                return kernel[grid](*args, **kw)
            return launch

    monkeypatch.setattr(triton_sgd, "_window_kernel", Recorder())
    V, C, K, n = 40, 6, 5, 100
    m = _model(SkipGramSharedNegatives, V, 8, 2)
    TritonKernel().train_chunk(m, _to(_examples(n, V, C, K, seed=5)), lr_start=0.1, lr_end=0.0)
    step = triton_sgd.examples_in_flight(V, C + 1 + K)
    assert len(launches) == -(-n // step) and all(size <= step for _, size in launches)
    assert [s for s, _ in launches] == list(range(0, n, step)) and sum(size for _, size in launches) == n
