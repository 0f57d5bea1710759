"""The word2vec loader on damaged files: NaN/Inf rows, duplicate words, headers the file cannot hold."""

import logging
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from conftest import ROOT
from w2v import export
from w2v.export import load_word2vec, save_word2vec_binary, save_word2vec_text
from w2v.keyedvectors import KeyedVectors

SCRIPT = ROOT / "scripts" / "evaluate.py"
WORDS = ["the", "of", "war", "peace"]


def _vectors():
    return np.arange(len(WORDS) * 3, dtype=np.float32).reshape(-1, 3) / 7


def _evaluate_cli(path):
    return subprocess.run([sys.executable, str(SCRIPT), str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39"])  # 1e39 overflows float32 to inf
def test_text_row_with_nan_or_inf_is_refused_naming_line_and_word(tmp_path, value):
    path = tmp_path / "v.txt"
    path.write_text(f"3 2\nthe 0.1 0.2\nof {value} 0.3\nwar 0.5 0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"v\.txt:3: the vector of 'of' holds NaN or Inf"):
        load_word2vec(path)


def test_binary_row_with_nan_is_refused_naming_record_and_word(tmp_path):
    vectors = _vectors()
    vectors[2, 1] = np.nan
    path = tmp_path / "v.bin"
    save_word2vec_binary(path, WORDS, vectors)
    with pytest.raises(ValueError, match=r"v\.bin: record 3 .*'war' holds NaN or Inf"):
        load_word2vec(path)


def test_evaluate_cli_refuses_nan_with_exit_2(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("2 2\nthe nan 0.2\nof 0.1 0.3\n", encoding="utf-8")
    proc = _evaluate_cli(path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "v.txt:2: the vector of 'the' holds NaN or Inf" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_duplicate_words_are_reported_and_the_first_kept(tmp_path, caplog):
    path = tmp_path / "v.txt"
    path.write_text("4 2\nthe 1 0\nof 0 1\nthe 5 5\nwar 1 1\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="w2v"):
        words, vectors = load_word2vec(path)
    assert words == ["the", "of", "war"] and vectors.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert "v.txt:4: duplicate word 'the' (first at " in caplog.text and "v.txt:2)" in caplog.text
    assert len(KeyedVectors.load_word2vec_format(path)) == 3
    proc = _evaluate_cli(path)
    assert proc.returncode == 0, proc.stderr
    assert "duplicate word 'the'" in proc.stderr and "1 duplicate word(s) ignored" in proc.stderr


@pytest.mark.parametrize("binary", [False, True])
def test_header_announcing_a_billion_words_is_checked_against_the_file_size(tmp_path, binary):
    path = tmp_path / ("v.bin" if binary else "v.txt")
    (save_word2vec_binary if binary else save_word2vec_text)(path, WORDS, _vectors())
    data = path.read_bytes()
    path.write_bytes(b"1000000000 3" + data[data.index(b"\n"):])
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="header announced 1000000000 .*holds at most [0-9]+"):
            load_word2vec(path, binary=binary)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, peak  # 12 GB before the check
    proc = _evaluate_cli(path)
    assert proc.returncode == 2 and "header announced 1000000000" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


def test_binary_rows_are_read_incrementally(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(2000)]
    vectors = rng.standard_normal((2000, 256)).astype(np.float32)
    path = tmp_path / "v.bin"
    save_word2vec_binary(path, words, vectors)
    size = path.stat().st_size
    monkeypatch.setattr(export._Records, "_BLOCK", 4096)
    tracemalloc.start()
    try:
        got_words, got = load_word2vec(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got_words == words and np.array_equal(got, vectors)
    # The table itself plus small blocks; reading the whole file first would add `size` bytes.
    assert peak < vectors.nbytes + size // 2, (peak, vectors.nbytes, size)


@pytest.mark.parametrize("binary", [False, True])
def test_limit_reads_the_first_rows_only(tmp_path, binary):
    path = tmp_path / "v.out"
    (save_word2vec_binary if binary else save_word2vec_text)(path, WORDS, _vectors())
    words, vectors = load_word2vec(path, binary=binary, limit=2)
    assert words == WORDS[:2] and np.array_equal(vectors, _vectors()[:2])
