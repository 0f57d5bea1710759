"""The batched SGD step gives the same update as autograd + SGD on the negative-sampling loss."""
import torch

from conftest import assert_step_matches_autograd
from w2v.loss import negative_sampling_loss
from w2v.model import CBOW, SkipGram


def _randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(model.in_embed.weight.shape, generator=g) * 0.3)
        model.out_embed.weight.copy_(torch.randn(model.out_embed.weight.shape, generator=g) * 0.3)


def test_init_matches_word2vec_c():
    m = SkipGram(500, 50, torch.Generator().manual_seed(0))
    w = m.in_embed.weight
    assert w.abs().max() <= 0.5 / 50 and w.abs().max() > 0.45 / 50
    assert m.out_embed.weight.eq(0).all()


def test_loss_value():
    scores = torch.tensor([[2.0, -1.0, 0.5]])
    valid = torch.tensor([[1.0, 1.0, 0.0]])
    expected = -torch.log(torch.sigmoid(torch.tensor(2.0))) - torch.log(torch.sigmoid(torch.tensor(1.0)))
    assert torch.allclose(negative_sampling_loss(scores, valid), expected.reshape(1))


def _assert_fused_equals_autograd(cls, inputs, lr, seed):
    """cls.sgd_step(*inputs, lr) changes both tables as autograd + plain SGD on cls.forward does."""
    V, D = 30, 8
    ref, fused = cls(V, D), cls(V, D)
    _randomise(ref, seed)
    _randomise(fused, seed)
    assert_step_matches_autograd(ref, fused, inputs, lr)
    return fused


def test_skipgram_fused_step_equals_autograd_with_duplicates():
    g = torch.Generator().manual_seed(5)
    centre = torch.randint(0, 30, (64,), generator=g)
    context = torch.randint(0, 6, (64,), generator=g)   # many repeated rows, as frequent words are
    negatives = torch.randint(0, 30, (64, 5), generator=g)
    negatives[0, 0] = centre[0]                          # a noise word equal to the positive is skipped
    fused = _assert_fused_equals_autograd(SkipGram, (centre, context, negatives), 0.1, seed=1)
    assert not torch.allclose(fused.in_embed.weight, SkipGram(30, 8).in_embed.weight)


def _cbow_reference(model, contexts, mask, centre, negatives, lr):
    """Autograd for d loss / d h; each context word then gets word2vec.c's update."""
    V, D = model.in_embed.weight.shape
    in_w = model.in_embed.weight.detach().clone()
    out = model.out_embed.weight.detach().clone().requires_grad_(True)
    hidden = model._hidden(in_w[contexts] * mask.unsqueeze(2), mask.float()).requires_grad_(True)
    targets = torch.cat([centre.unsqueeze(1), negatives], dim=1)
    valid = torch.ones(targets.shape)
    valid[:, 1:] = (negatives != centre.unsqueeze(1)).float()
    scores = (out[targets] * hidden.unsqueeze(1)).sum(-1)
    loss = negative_sampling_loss(scores, valid).sum()
    loss.backward()
    grad_h = hidden.grad
    if not model.mean:
        grad_h = grad_h / mask.sum(1, keepdim=True).clamp(min=1)
    delta_in = torch.zeros(V, D).index_add_(0, contexts[mask], (-lr * grad_h).unsqueeze(1).expand(-1, contexts.shape[1], -1)[mask])
    return loss.detach(), in_w + delta_in, out.detach() - lr * out.grad


def test_cbow_fused_step_matches_reference_mean_and_sum():
    for mean in (True, False):
        V, D, lr = 25, 6, 0.05
        m = CBOW(V, D, mean=mean)
        _randomise(m, 2)
        g = torch.Generator().manual_seed(7)
        contexts = torch.randint(0, V, (40, 4), generator=g)
        mask = torch.rand(40, 4, generator=g) > 0.3
        mask[:, 0] = True
        centre = torch.randint(0, V, (40,), generator=g)
        negatives = torch.randint(0, V, (40, 3), generator=g)
        loss_ref, in_ref, out_ref = _cbow_reference(m, contexts, mask, centre, negatives, lr)
        loss = m.sgd_step(contexts, mask, centre, negatives, lr)
        assert torch.allclose(loss, loss_ref, rtol=1e-5)
        assert torch.allclose(m.in_embed.weight, in_ref, atol=1e-5)
        assert torch.allclose(m.out_embed.weight, out_ref, atol=1e-5)


def test_cbow_autograd_forward_agrees_with_fused_loss():
    m = CBOW(20, 4)
    _randomise(m, 3)
    contexts = torch.randint(0, 20, (10, 4))
    mask = torch.ones(10, 4, dtype=torch.bool)
    centre, negatives = torch.randint(0, 20, (10,)), torch.randint(0, 20, (10, 2))
    expected = m(contexts, mask, centre, negatives).sum().detach()
    assert torch.allclose(m.sgd_step(contexts, mask, centre, negatives, 0.0), expected)


def test_shared_negative_skipgram_step_equals_autograd():
    from w2v.model import SkipGramSharedNegatives
    g = torch.Generator().manual_seed(9)
    contexts = torch.randint(0, 8, (32, 6), generator=g)
    mask = torch.rand(32, 6, generator=g) > 0.4
    centre = torch.randint(0, 30, (32,), generator=g)
    negatives = torch.randint(0, 30, (32, 4), generator=g)
    negatives[1, 2] = centre[1]
    _assert_fused_equals_autograd(SkipGramSharedNegatives, (contexts, mask, centre, negatives), 0.1, seed=4)


def test_shared_negatives_equal_plain_skipgram_when_each_window_has_one_context():
    from w2v.model import SkipGramSharedNegatives
    a, b = SkipGram(20, 5), SkipGramSharedNegatives(20, 5)
    _randomise(a, 6)
    _randomise(b, 6)
    centre, context = torch.randint(0, 20, (16,)), torch.randint(0, 20, (16,))
    negatives = torch.randint(0, 20, (16, 3))
    la = a.sgd_step(centre, context, negatives, 0.2)
    lb = b.sgd_step(context.unsqueeze(1), torch.ones(16, 1, dtype=torch.bool), centre, negatives, 0.2)
    assert torch.allclose(la, lb) and torch.allclose(a.in_embed.weight, b.in_embed.weight, atol=1e-6)


def test_scatter_rows_cuda_path_equals_cpu_path():
    """The sync-free scatter used on CUDA gives the CPU path's result (run here on the CPU)."""
    from w2v.model import scatter_rows
    g = torch.Generator().manual_seed(11)
    rows = torch.randint(0, 10, (8, 4), generator=g)
    grads = torch.randn(8, 4, 3, generator=g)
    mask = torch.rand(8, 4, generator=g) > 0.5
    a, b = torch.zeros(10, 3), torch.zeros(10, 3)
    scatter_rows(a, rows, grads, mask, sync_free=False)
    scatter_rows(b, rows, grads, mask, sync_free=True)
    assert torch.allclose(a, b, atol=1e-6) and a.abs().sum() > 0
