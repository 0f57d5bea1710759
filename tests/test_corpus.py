"""Encoded corpus: ids, OOV dropped, sentence offsets, cache reuse and invalidation."""
import os

import numpy as np
import pytest

from w2v.config import build_config
from w2v.diskarray import DiskArray
from w2v.pipeline import prepare
from w2v.vocab import Vocab


def encode_corpus(paths, vocab, cache_dir):
    """The corpus encoded with a given vocabulary, as the Python API's train() encodes it."""
    return prepare(build_config({"corpus": {"paths": paths}}), cache_dir, given=vocab).corpus


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


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_reading_the_corpus_front_to_back_does_not_grow_resident_memory(tmp_path):
    path = tmp_path / "ids"
    n = 12 << 20  # 48 MB of int32 ids
    np.arange(n, dtype=np.int32).tofile(path)
    step = 1 << 18

    def read_all(array) -> int:
        before, total = _rss_bytes(), 0
        for a in range(0, n, step):
            total += int(np.asarray(array[a:a + step], dtype=np.int64)[-1])
        assert total == sum(range(step - 1, n, step))
        return _rss_bytes() - before

    grown = read_all(DiskArray(path, np.int32))
    mapped = np.memmap(path, dtype=np.int32, mode="r")
    grown_memmap = read_all(mapped)  # the control: a memmap keeps the pages it read resident
    del mapped
    if grown_memmap < 32 << 20:
        pytest.skip("this kernel does not count mapped file pages in RSS; nothing to compare")
    assert grown < 8 << 20, (grown, grown_memmap)


def test_diskarray_indexing_matches_numpy(tmp_path):
    values = np.array([0, 3, 3, 10, 25, 26], dtype=np.int64)
    values.tofile(tmp_path / "v")
    arr = DiskArray(tmp_path / "v", np.int64)
    assert len(arr) == 6 and arr[-1] == 26 and arr[np.int64(2)] == 3
    assert arr[1:4].tolist() == [3, 3, 10] and arr[4:99].tolist() == [25, 26] and arr[5:2].tolist() == []
    assert np.searchsorted(arr, [0, 3, 11, 30]).tolist() == np.searchsorted(values, [0, 3, 11, 30]).tolist()
    assert np.asarray(arr).tolist() == values.tolist()
    with pytest.raises(IndexError):
        arr[6]


def test_cache_cut_short_is_encoded_again(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("a b a\nb\n")
    vocab = Vocab(["a", "b"], np.array([2, 2]))
    encode_corpus([str(path)], vocab, tmp_path / "cache")
    ids_file, = (tmp_path / "cache").glob("*.ids")
    ids_file.write_bytes(ids_file.read_bytes()[:4])  # as if the disk filled up while writing
    again = encode_corpus([str(path)], vocab, tmp_path / "cache")
    assert again.ids.tolist() == [0, 1, 0, 1] and again.offsets.tolist() == [0, 3, 4]
