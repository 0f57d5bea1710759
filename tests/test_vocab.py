"""Vocabulary: counting, min_count, pruning cap, order and ties, save/load."""
import numpy as np
import pytest

from w2v.vocab import Vocab, VocabError, build_vocab, count_words


def test_min_count_and_frequency_order_with_ties_by_word():
    sents = [["b", "a", "c", "b"], ["a", "d", "b", "e", "e"]]
    counts, total = count_words(sents, 1000)
    assert total == 9
    v = build_vocab(counts, min_count=2)
    assert v.words == ["b", "a", "e"]          # b:3, then a:2 and e:2 tied -> by word
    assert v.counts.tolist() == [3, 2, 2]
    assert v.total == 7


def test_max_vocab_size_keeps_most_frequent():
    counts = {"x": 5, "y": 9, "z": 7, "w": 1}
    assert build_vocab(counts, min_count=1, max_vocab_size=2).words == ["y", "z"]


def test_pruning_cap_bounds_distinct_words_and_keeps_frequent():
    rng = np.random.default_rng(0)
    frequent = [f"f{i}" for i in range(20)]
    sents = []
    for j in range(3000):
        rare = [f"r{j}_{k}" for k in range(3)]  # each rare word occurs once
        sents.append(list(rng.choice(frequent, 5)) + rare)
    counts, total = count_words(sents, max_distinct_words=1000)
    assert len(counts) <= 1000 + 3 + 5  # pruned whenever it grows past the cap
    assert all(f in counts for f in frequent)
    exact, _ = count_words(sents, max_distinct_words=10**9)
    # frequent words lose nothing: they are never pruned
    assert all(counts[f] == exact[f] for f in frequent)


def test_no_word_reaches_min_count_is_clear_error():
    with pytest.raises(VocabError, match="min_count=10"):
        build_vocab({"a": 3, "b": 2}, min_count=10)


def test_save_load_round_trip(tmp_path):
    v = Vocab(["the", "ünïcode", "cat"], np.array([10, 4, 4]))
    v.save(tmp_path / "vocab.txt")
    w = Vocab.load(tmp_path / "vocab.txt")
    assert w.words == v.words and w.counts.tolist() == [10, 4, 4]
    assert w.fingerprint() == v.fingerprint()


def test_malformed_vocab_names_line(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("the 10\ncat\n")
    with pytest.raises(VocabError, match="line 2"):
        Vocab.load(p)


def test_packed_vocabulary_gives_back_the_same_words():
    """pack() keeps one string while training; words read afterwards are equal, in order. A word
    holding a newline (only possible through the API) leaves the vocabulary unpacked."""
    words = ["the", "ünïcode", "cat", "a"]
    v = Vocab(words, np.array([10, 4, 4, 1]))
    v.pack()
    assert len(v) == 4 and v._words is None
    assert v.words == words and v.fingerprint() == Vocab(words, np.array([10, 4, 4, 1])).fingerprint()
    odd = Vocab(["a\nb", "c"], np.array([2, 1]))
    odd.pack()
    assert odd.words == ["a\nb", "c"]
