"""Subword n-grams, fastText's hash and the CSR index, against gensim's fastText implementation."""
import numpy as np
import pytest
import torch

from w2v.subwords import SubwordIndex, fasttext_hash, ngram_hashes, ngrams

WORDS = ["hello", "a", "ab", "é", "ß", "straße", "naïve", "café", "日本語", "東京", "👍", "👍🏽",
         "ﬁre", "x" * 12, "<", ">", "</s>", "Ωmega"]
SETTINGS = [(3, 6), (1, 6), (1, 1), (2, 3), (5, 6), (6, 6), (7, 9), (3, 0)]


@pytest.fixture(scope="module")
def gft():
    return pytest.importorskip("gensim.models.fasttext")


@pytest.mark.parametrize("minn,maxn", SETTINGS)
def test_ngrams_equal_gensim(gft, minn, maxn):
    for w in WORDS:
        expected = [b.decode("utf-8") for b in gft.compute_ngrams_bytes(w, minn, maxn)]
        assert ngrams(w, minn, maxn) == expected, w


def test_hash_equals_gensim(gft):
    for w in WORDS:
        for g in ngrams(w, 1, 6) + [w]:
            assert fasttext_hash(g) == gft.ft_hash_bytes(g.encode("utf-8")), g
            assert fasttext_hash(g.encode("utf-8")) == fasttext_hash(g)


def test_hash_widens_bytes_as_signed_char():
    # One byte >= 0x80: XORed in as 0xFFFFFF80 (signed char), not 0x80.
    assert fasttext_hash(b"\x80") == ((2166136261 ^ 0xFFFFFF80) * 16777619) & 0xFFFFFFFF
    assert fasttext_hash(b"a") == ((2166136261 ^ 0x61) * 16777619) & 0xFFFFFFFF
    assert fasttext_hash(b"") == 2166136261


def test_boundary_rules():
    # Boundary 1-grams are left out; the whole "<w>" is an n-gram when short enough.
    assert ngrams("é", 1, 6) == ["<é", "<é>", "é", "é>"]
    assert "<ab>" in ngrams("ab", 3, 6) and "<ab>" not in ngrams("ab", 3, 3)
    assert ngrams("hello", 3, 0) == []
    assert ngrams("ab", 5, 6) == []  # minn above the bracketed length
    assert all(len(g) == 3 for g in ngrams("日本語", 3, 3)) and "<日本" in ngrams("日本語", 3, 3)


@pytest.mark.parametrize("minn,maxn", SETTINGS)
@pytest.mark.parametrize("buckets", [1, 97, 2_000_000])
def test_index_rows_equal_gensim(gft, minn, maxn, buckets):
    idx = SubwordIndex(WORDS, minn, maxn, buckets)
    V = len(WORDS)
    assert idx.offsets.dtype == torch.int64 and idx.rows.dtype == torch.int32
    assert idx.offsets.shape == (V + 1,) and int(idx.offsets[-1]) == len(idx.rows)
    for w, word in enumerate(WORDS):
        rows = idx.rows[idx.offsets[w]:idx.offsets[w + 1]].tolist()
        expected = [V + h for h in gft.ft_ngram_hashes(word, minn, maxn, buckets)] if maxn else []
        assert rows == [w] + expected, word
        assert idx.oov_rows(word).tolist() == expected
    assert idx.n_rows == V + (buckets if maxn else 0)
    assert int(idx.rows.max()) < idx.n_rows


def test_chunked_hashing_equals_one_pass(monkeypatch):
    import w2v.subwords as sw
    counts, hashes = ngram_hashes(WORDS * 3, 2, 5)
    monkeypatch.setattr(sw, "_CHUNK", 4)
    c2, h2 = ngram_hashes(WORDS * 3, 2, 5)
    assert np.array_equal(counts, c2) and np.array_equal(hashes, h2)
    assert counts.tolist() == [len(ngrams(w, 2, 5)) for w in WORDS * 3]


def test_edge_cases():
    idx = SubwordIndex([], 3, 6, 10)
    assert idx.offsets.tolist() == [0] and len(idx.rows) == 0
    assert SubwordIndex(["abc"], 3, 6, 1).rows.tolist() == [0] + [1] * len(ngrams("abc", 3, 6))
    assert SubwordIndex(["abc"], 3, 0, 10).rows.tolist() == [0]
    assert SubwordIndex(["abc"], 9, 12, 10).oov_rows("abc").size == 0
    with pytest.raises(ValueError, match="buckets"):
        SubwordIndex(["abc"], 3, 6, 0)
