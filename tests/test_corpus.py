"""Encoded corpus: ids, OOV dropped, sentence offsets, cache reuse and invalidation."""
import numpy as np

from w2v.corpus import encode_corpus
from w2v.vocab import Vocab


def test_encoding_drops_oov_and_keeps_sentences(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b zz a\nqq\nb c\n")
    vocab = Vocab(["a", "b", "c"], np.array([2, 2, 1]))
    enc = encode_corpus([str(path)], vocab, tmp_path / "cache")
    assert enc.ids.tolist() == [0, 1, 0, 1, 2]
    assert enc.offsets.tolist() == [0, 3, 5]      # the all-OOV line vanishes
    assert enc.raw_tokens == 7
    assert enc.sentence_of_token(0, 2).tolist() == [0, 0, 0, 1, 1]


def test_cache_is_reused_and_invalidated_when_file_changes(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b\n")
    vocab = Vocab(["a", "b"], np.array([1, 1]))
    encode_corpus([str(path)], vocab, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.ids"))) == 1
    again = encode_corpus([str(path)], vocab, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.ids"))) == 1 and again.ids.tolist() == [0, 1]
    path.write_text("b b a\n")
    changed = encode_corpus([str(path)], vocab, tmp_path / "cache")
    assert changed.ids.tolist() == [1, 1, 0]
