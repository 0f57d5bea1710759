"""Readers: plain, gz, bz2, folders, long single lines, invalid UTF-8."""
import bz2
import gzip

import pytest

from w2v import reader
from w2v.reader import CorpusError, ReadStats, iter_sentences


def _write(path, text, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


TEXT = "The cat sat\n\nOn the  mat\tToday\n"


@pytest.mark.parametrize("suffix,opener", [(".txt", open), (".gz", gzip.open), (".bz2", bz2.open)])
def test_formats_give_same_sentences(tmp_path, suffix, opener):
    path = _write(tmp_path / f"c{suffix}", TEXT, opener)
    assert list(iter_sentences([str(path)])) == [["the", "cat", "sat"], ["on", "the", "mat", "today"]]


def test_lowercase_off_keeps_case(tmp_path):
    path = _write(tmp_path / "c.txt", TEXT)
    assert list(iter_sentences([str(path)], lowercase=False))[0] == ["The", "cat", "sat"]


def test_folder_reads_all_files_sorted_and_skips_hidden(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    _write(d / "b.txt", "two\n")
    _write(d / "a.txt", "one\n")
    _write(d / "sub" / "c.gz", "three\n", gzip.open)
    _write(d / ".hidden", "secret\n")
    assert list(iter_sentences([str(d)])) == [["one"], ["two"], ["three"]]


def test_long_sentences_are_cut(tmp_path):
    path = _write(tmp_path / "c.txt", " ".join(str(i) for i in range(25)) + "\nx y\n")
    out = list(iter_sentences([str(path)], max_sentence_length=10))
    assert [len(s) for s in out] == [10, 10, 5, 2]
    assert out[2][-1] == "24"


def test_giant_single_line_is_streamed_in_bounded_pieces(tmp_path, monkeypatch):
    # text8 style: one line, no newline at the end; tokens cut by chunk edges must be rejoined.
    monkeypatch.setattr(reader, "CHUNK_CHARS", 37)  # tiny chunks force many cut tokens
    words = [f"w{i % 97}x{i}" for i in range(5000)]
    path = _write(tmp_path / "text8", " ".join(words))
    pieces = list(iter_sentences([str(path)], max_sentence_length=1000))
    assert all(len(p) <= 1000 for p in pieces)
    assert [w for p in pieces for w in p] == words


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good words \xff\xfe here\n")
    stats = ReadStats()
    out = list(iter_sentences([str(path)], stats=stats))
    assert out[0][:2] == ["good", "words"] and out[0][-1] == "here"
    assert stats.replaced_bytes == 2
    assert str(path) in stats.per_file_replaced


def test_missing_file_names_it(tmp_path):
    with pytest.raises(CorpusError, match="nope.txt"):
        list(iter_sentences([str(tmp_path / "nope.txt")]))


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no files"):
        list(iter_sentences([str(tmp_path / "empty")]))


def test_truncated_gzip_names_file(tmp_path):
    good = tmp_path / "c.gz"
    _write(good, "word " * 100000, gzip.open)
    data = good.read_bytes()
    bad = tmp_path / "cut.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="cut.gz"):
        list(iter_sentences([str(bad)]))
