"""Hierarchical softmax: word2vec.c's Huffman tree, a normalised distribution, the batched update."""
import itertools

import numpy as np
import pytest
import torch

from w2v.heads import HierarchicalSoftmaxHead
from w2v.huffman import huffman_tree
from w2v.loss import negative_sampling_loss
from w2v.model import CBOW, SkipGram, SkipGramSharedNegatives
from conftest import assert_step_matches_autograd


def _codes(tree, w):
    return "".join(str(b) for b in tree.codes[w, : tree.lengths[w]])


def test_small_tree_matches_word2vec_c_by_hand():
    # CreateBinaryTree on counts 5 3 2 1: node4 = {w3, w2 (bit 1)}, node5 = {node4, w1 (1)} (a tie
    # 3 vs 3 goes to the inner node), root node6 = {w0, node5 (1)}. Inner index = node - V.
    tree = huffman_tree(np.array([5, 3, 2, 1]))
    assert [_codes(tree, w) for w in range(4)] == ["0", "11", "101", "100"]
    assert tree.lengths.tolist() == [1, 2, 3, 3]
    assert tree.points[2].tolist() == [2, 1, 0] and tree.points[0, 0] == 2   # root first (V - 2)


@pytest.mark.parametrize("seed", [0, 1])
def test_codes_are_prefix_free_complete_and_shorter_for_frequent_words(seed):
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.zipf(1.5, 300).clip(max=10**6))[::-1]
    tree = huffman_tree(counts)
    codes = [_codes(tree, w) for w in range(len(counts))]
    assert len(set(codes)) == len(codes)
    for a, b in itertools.combinations(codes, 2):
        assert not a.startswith(b) and not b.startswith(a)
    assert sum(2.0 ** -len(c) for c in codes) == pytest.approx(1.0)      # a full binary tree
    lengths = tree.lengths
    for c in np.unique(counts):        # a more frequent word never has a longer code
        assert lengths[counts > c].max(initial=0) <= lengths[counts == c].min()
    assert lengths[0] < lengths[-1]
    # Huffman is optimal: expected code length within 1 bit of the entropy.
    p = counts / counts.sum()
    entropy = -(p * np.log2(p)).sum()
    assert entropy <= (p * lengths).sum() < entropy + 1
    # each word's inner nodes are distinct and the root comes first
    assert (tree.points[:, 0] == len(counts) - 2).all()
    assert all(len(set(tree.points[w, : lengths[w]])) == lengths[w] for w in range(len(counts)))


def test_unsorted_counts_give_each_word_its_sorted_code_and_one_word_is_refused():
    counts = np.array([40, 22, 15, 9, 7, 5, 3, 2, 1])
    perm = np.random.default_rng(2).permutation(len(counts))
    tree, shuffled = huffman_tree(counts), huffman_tree(counts[perm])
    assert [_codes(shuffled, i) for i in range(len(perm))] == [_codes(tree, w) for w in perm]
    assert np.array_equal(shuffled.points, tree.points[perm])
    with pytest.raises(ValueError, match="at least 2 words"):
        huffman_tree(np.array([4]))


def test_word_probabilities_sum_to_one_by_brute_force():
    counts = np.array([40, 22, 15, 9, 9, 5, 3, 2, 1])
    tree = huffman_tree(counts)
    head = HierarchicalSoftmaxHead(tree)
    g = torch.Generator().manual_seed(0)
    inner = torch.randn(len(counts) - 1, 7, generator=g, dtype=torch.float64)
    for _ in range(3):
        h = torch.randn(7, generator=g, dtype=torch.float64)
        probs = []
        for w in range(len(counts)):       # walk the path: P(w) = prod s((1 - 2 code) h.v)
            p = 1.0
            for d in range(tree.lengths[w]):
                sign = 1 - 2 * int(tree.codes[w, d])
                p *= torch.sigmoid(sign * (h @ inner[tree.points[w, d]])).item()
            probs.append(p)
        assert sum(probs) == pytest.approx(1.0, abs=1e-9)
        # The batched head gives the same probabilities: exp(-loss) over the padded, masked path.
        rows, labels, valid = head.targets(torch.arange(len(counts)), None)
        scores = (inner[rows] * h).sum(-1)
        loss = negative_sampling_loss(scores, valid.double(), labels.double())
        assert np.allclose(torch.exp(-loss).numpy(), probs)


def _hs_model(cls, counts, seed, D=6):
    model = cls(len(counts), D, head=HierarchicalSoftmaxHead(huffman_tree(counts)))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.randn(model.in_embed.weight.shape, generator=g) * 0.3)
        model.out_embed.weight.copy_(torch.randn(model.out_embed.weight.shape, generator=g) * 0.3)
    return model


def test_output_table_is_inner_nodes_initialised_to_zero():
    counts = np.arange(50, 0, -1)
    model = SkipGram(50, 8, head=HierarchicalSoftmaxHead(huffman_tree(counts)))
    assert model.out_embed.weight.shape == (49, 8) and model.out_embed.weight.eq(0).all()
    assert not model.needs_torch_step   # the kernels walk the tree themselves


@pytest.mark.parametrize("cls", [SkipGram, SkipGramSharedNegatives, CBOW])
def test_hs_fused_step_equals_autograd(cls):
    counts = np.sort(np.random.default_rng(1).integers(1, 500, 30))[::-1].copy()
    ref, fused = _hs_model(cls, counts, 2), _hs_model(cls, counts, 2)
    g = torch.Generator().manual_seed(3)
    centre = torch.randint(0, 30, (40,), generator=g)
    none = centre.new_empty((40, 0))
    if cls is SkipGram:
        inputs = (centre, torch.randint(0, 6, (40,), generator=g), none)     # repeated input rows
    else:   # CBOW with one context word: its word2vec.c update equals exact autograd
        width = 1 if cls is CBOW else 4
        mask = torch.rand(40, width, generator=g) > 0.3
        mask[:, 0] = True
        inputs = (torch.randint(0, 30, (40, width), generator=g), mask, centre, none)
    lr = 0.1
    assert_step_matches_autograd(ref, fused, inputs, lr)
    assert not torch.allclose(fused.out_embed.weight, _hs_model(cls, counts, 2).out_embed.weight)


def test_hs_with_a_one_word_vocabulary_is_a_clear_error(tmp_path):
    from w2v.config import build_config
    from w2v.trainer import TrainingError, train
    corpus, vocab = tmp_path / "c.txt", tmp_path / "vocab.txt"
    corpus.write_text("word word word\n" * 10)
    vocab.write_text("word 30\n")
    cfg = build_config({"corpus": {"paths": [str(corpus)]}, "vocab": {"path": str(vocab)},
                        "model": {"loss": "hs"}, "output": {"dir": str(tmp_path / "out")}})
    with pytest.raises(TrainingError, match="model.loss: hs needs at least 2 words"):
        train(cfg, quiet=True)
