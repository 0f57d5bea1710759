"""The subword model's torch step (the reference the kernels follow): a word's input vector is the
mean of its rows, and the gradient of that vector goes in full to each of its rows (fastText)."""
import pytest
import torch

from w2v.heads import HierarchicalSoftmaxHead
from w2v.huffman import huffman_tree
from w2v.loss import negative_sampling_loss
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives
from w2v.subwords import SubwordIndex

WORDS = ["the", "of", "and", "über", "naïve", "straße", "東京", "a", "ab", "running", "runner", "ran",
         "unbelievable", "x", "cat", "cats", "dog", "dogs", "🙂", "zebra"]
V, D, BUCKETS = len(WORDS), 6, 23   # few buckets: n-grams collide, rows repeat within a batch


def _index(minn=2, maxn=4, buckets=BUCKETS):
    return SubwordIndex(WORDS, minn, maxn, buckets)


def _model(cls, seed, head=None, **kw):
    m = cls(V, D, torch.Generator().manual_seed(seed), head=head, subwords=_index(), **kw)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        m.in_embed.weight.copy_(torch.randn(m.in_embed.weight.shape, generator=g) * 0.3)
        m.out_embed.weight.copy_(torch.randn(m.out_embed.weight.shape, generator=g) * 0.3)
    return m


def _rows_of(model, w):
    off, rows = model.subwords
    return rows[off[w]:off[w + 1]].tolist()


def _mean(in_w, model, w):
    return in_w[_rows_of(model, w)].mean(0)


def _delta(model, occurrences, in_shape):
    """The input-table change the fastText rule gives: each (word, gradient) occurrence adds the
    gradient to every row of the word, written out one row at a time."""
    delta = torch.zeros(in_shape)
    for w, g in occurrences:
        for r in _rows_of(model, w):
            delta[r] += g
    return delta


def _scores_and_loss(model, out, hidden, positive, negatives):
    targets, labels, valid = model._targets(positive, negatives)
    if hidden.dim() == 2:
        scores = (out[targets] * hidden.unsqueeze(1)).sum(-1)
        return negative_sampling_loss(scores, valid, labels).sum()
    scores = torch.einsum("bcd,btd->bct", hidden, out[targets])
    T = scores.shape[2]
    return scores, targets, labels, valid, T


def _check(model, in_w, out_grad, out0, lr, loss_ref, loss, delta):
    assert torch.allclose(loss, loss_ref.detach(), rtol=1e-5)
    assert torch.allclose(model.out_embed.weight, out0 - lr * out_grad, atol=1e-5)
    assert torch.allclose(model.in_embed.weight, in_w + delta, atol=1e-5)
    assert delta.abs().sum() > 0


def _batch(seed, B=48, C=4):
    g = torch.Generator().manual_seed(seed)
    contexts = torch.randint(0, V, (B, C), generator=g)
    mask = torch.rand(B, C, generator=g) > 0.3
    mask[:, 0] = True
    centre = torch.randint(0, V, (B,), generator=g)
    negatives = torch.randint(0, V, (B, 3), generator=g)
    negatives[0, 0] = centre[0]
    return contexts, mask, centre, negatives


@pytest.mark.parametrize("hs", [False, True])
def test_skipgram_step_equals_autograd_with_fasttext_rule(hs):
    head = HierarchicalSoftmaxHead(huffman_tree(torch.arange(V, 0, -1).numpy())) if hs else None
    model = _model(SkipGram, 1, head)
    contexts, _, centre, negatives = _batch(2)
    context, lr = contexts[:, 0], 0.1
    in_w, out0 = model.in_embed.weight.detach().clone(), model.out_embed.weight.detach().clone()
    hidden = torch.stack([_mean(in_w, model, w) for w in context.tolist()]).requires_grad_(True)
    out = out0.clone().requires_grad_(True)
    loss_ref = _scores_and_loss(model, out, hidden, centre, negatives)
    loss_ref.backward()
    assert torch.allclose(model(centre, context, negatives).sum(), loss_ref)   # forward: the same loss
    delta = _delta(model, zip(context.tolist(), -lr * hidden.grad), in_w.shape)
    loss = model.sgd_step(centre, context, negatives, lr)
    _check(model, in_w, out.grad, out0, lr, loss_ref, loss, delta)


def test_shared_negatives_step_equals_autograd_with_fasttext_rule():
    model = _model(SkipGramSharedNegatives, 3)
    contexts, mask, centre, negatives = _batch(4)
    lr = 0.1
    in_w, out0 = model.in_embed.weight.detach().clone(), model.out_embed.weight.detach().clone()
    hidden = torch.stack([torch.stack([_mean(in_w, model, w) for w in row]) for row in contexts.tolist()])
    hidden.requires_grad_(True)
    out = out0.clone().requires_grad_(True)
    scores, targets, labels, valid, T = _scores_and_loss(model, out, hidden, centre, negatives)
    pair_valid = (mask.float().unsqueeze(2) * valid.unsqueeze(1)).reshape(-1, T)
    loss_ref = negative_sampling_loss(scores.reshape(-1, T), pair_valid).sum()
    loss_ref.backward()
    assert torch.allclose(model(contexts, mask, centre, negatives).sum(), loss_ref, rtol=1e-5)
    occ = [(w, -lr * hidden.grad[b, c]) for b, row in enumerate(contexts.tolist()) for c, w in enumerate(row)
           if mask[b, c]]
    loss = model.sgd_step(contexts, mask, centre, negatives, lr)
    _check(model, in_w, out.grad, out0, lr, loss_ref, loss, _delta(model, occ, in_w.shape))


@pytest.mark.parametrize("mean", [True, False])
def test_cbow_step_pools_all_context_rows_as_fasttext(mean):
    model = _model(CBOW, 5, mean=mean)
    contexts, mask, centre, negatives = _batch(6)
    lr = 0.05
    in_w, out0 = model.in_embed.weight.detach().clone(), model.out_embed.weight.detach().clone()
    bags = [[r for w, m in zip(row, mrow) if m for r in _rows_of(model, w)]
            for row, mrow in zip(contexts.tolist(), mask.tolist())]
    hidden = torch.stack([in_w[b].mean(0) if mean else in_w[b].sum(0) for b in bags]).requires_grad_(True)
    out = out0.clone().requires_grad_(True)
    loss_ref = _scores_and_loss(model, out, hidden, centre, negatives)
    loss_ref.backward()
    assert torch.allclose(model(contexts, mask, centre, negatives).sum(), loss_ref, rtol=1e-5)
    scale = [1.0 if mean else 1.0 / len(b) for b in bags]
    occ = [(w, -lr * scale[b] * hidden.grad[b]) for b, row in enumerate(contexts.tolist())
           for c, w in enumerate(row) if mask[b, c]]
    loss = model.sgd_step(contexts, mask, centre, negatives, lr)
    _check(model, in_w, out.grad, out0, lr, loss_ref, loss, _delta(model, occ, in_w.shape))


def test_the_rule_is_n_times_exact_autograd_where_rows_are_not_shared():
    """Exact calculus gives each of a word's n rows 1/n of the gradient of its mean; the step gives
    each the whole of it (fastText's Model::update for skip-gram and CBOW)."""
    idx = SubwordIndex(WORDS, 3, 3, 1_000_003)
    picked = [w for w in range(V) if len(set(idx.rows[idx.offsets[w]:idx.offsets[w + 1]].tolist())) ==
              int(idx.offsets[w + 1] - idx.offsets[w])][:4]
    rows = [set(idx.rows[idx.offsets[w]:idx.offsets[w + 1]].tolist()) for w in picked]
    assert all(not (a & b) for i, a in enumerate(rows) for b in rows[i + 1:])   # no row shared
    ref = SkipGram(V, D, torch.Generator().manual_seed(0), subwords=idx)
    step = SkipGram(V, D, torch.Generator().manual_seed(0), subwords=idx)
    with torch.no_grad():
        for m in (ref, step):
            m.out_embed.weight.copy_(torch.randn(V, D, generator=torch.Generator().manual_seed(1)))
    context = torch.tensor(picked)
    centre = torch.tensor([(w + 1) % V for w in picked])
    negatives = torch.tensor([[(w + 2) % V] for w in picked])
    ref(centre, context, negatives).sum().backward()
    grad = ref.in_embed.weight.grad.to_dense()
    before = step.in_embed.weight.detach().clone()
    step.sgd_step(centre, context, negatives, 0.1)
    change = step.in_embed.weight.detach() - before
    for w, r in zip(picked, rows):
        n = len(r)
        assert torch.allclose(change[list(r)], -0.1 * n * grad[list(r)], atol=1e-6)
    assert change.abs().sum() > 0


def test_word_vectors_are_the_means_and_init_is_fasttexts():
    m = SkipGram(V, 50, torch.Generator().manual_seed(0), subwords=_index(buckets=1000))
    w = m.in_embed.weight
    assert w.shape == (V + 1000, 50)
    assert w.abs().max() <= 1 / 50 and w.abs().max() > 0.95 / 50        # uniform(-1/dim, 1/dim) everywhere
    vec = m.word_vectors()
    for i in (0, 5, V - 1):
        assert torch.allclose(vec[i], w[_rows_of(m, i)].mean(0))
    assert torch.allclose(m.input_vectors(torch.tensor([[3, 4]]))[0, 1], vec[4])


def test_input_rows_cover_the_ngram_rows():
    m = SkipGram(V, 4, subwords=_index())
    got = set(m.input_rows(torch.tensor([1, 4])).tolist())
    assert got == set(_rows_of(m, 1)) | set(_rows_of(m, 4)) and max(got) >= V


def test_a_lock_of_v_factors_locks_word_rows_and_leaves_ngram_rows_free():
    m = _model(SkipGram, 8)
    m.set_lock(torch.zeros(V))
    before = m.in_embed.weight.detach().clone()
    contexts, _, centre, negatives = _batch(9)
    m.sgd_step(centre, contexts[:, 0], negatives, 0.1)
    change = (m.in_embed.weight - before).abs().sum(1)
    assert change[:V].eq(0).all() and change[V:].sum() > 0
