"""Tests for the word2vec file formats and atomic writes."""

import contextlib
import os
import stat

import numpy as np
import pytest

from w2v import export, textformat
from w2v.atomic import atomic_write
from w2v.export import load_word2vec, save_word2vec_binary, save_word2vec_text

# Deliberately not alphabetical: the file order (frequency order) must survive a round trip.
WORDS = ["the", "zebra", "naïve", "日本語", "a", "über-cool", "ε", "</s>"]


@pytest.fixture
def vectors():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((len(WORDS), 7)).astype(np.float32)
    # Awkward magnitudes: tiny, huge, zero, negative zero, a subnormal.
    v[0, :5] = [1e-30, -3.4e38, 0.0, -0.0, 1e-45]
    return v


def _listing(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("save,binary", [(save_word2vec_text, False), (save_word2vec_binary, True)])
def test_round_trip_is_exact_and_keeps_order(tmp_path, vectors, save, binary):
    path = tmp_path / "vec.out"
    save(path, WORDS, vectors)
    for flag in (binary, None):  # explicit format, then sniffed
        words, loaded = load_word2vec(path, binary=flag)
        assert words == WORDS
        assert loaded.dtype == np.float32 and loaded.shape == vectors.shape
        # '%.9g' round-trips float32 exactly; binary is the raw bytes.
        np.testing.assert_array_equal(loaded, vectors)
    assert _listing(tmp_path) == ["vec.out"]


def test_text_layout(tmp_path, vectors):
    path = tmp_path / "vec.txt"
    save_word2vec_text(path, WORDS, vectors)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == f"{len(WORDS)} 7"
    assert lines[-1] == ""  # file ends with a newline
    for word, line in zip(WORDS, lines[1:]):
        fields = line.split(" ")  # single spaces, no trailing space
        assert fields[0] == word and len(fields) == 8
    assert lines[2].startswith("zebra ")


def test_binary_layout(tmp_path, vectors):
    path = tmp_path / "vec.bin"
    save_word2vec_binary(path, WORDS, vectors)
    data = path.read_bytes()
    header = f"{len(WORDS)} 7\n".encode()
    assert data.startswith(header)
    first = b"the " + vectors[0].astype("<f4").tobytes() + b"\n"
    assert data[len(header):len(header) + len(first)] == first
    assert len(data) == len(header) + sum(len(w.encode()) + 1 + 28 + 1 for w in WORDS)


def test_save_rejects_bad_input(tmp_path, vectors):
    with pytest.raises(ValueError, match="whitespace"):
        save_word2vec_text(tmp_path / "a.txt", ["ok"] * 7 + ["two words"], vectors)
    with pytest.raises(ValueError, match="words"):
        save_word2vec_binary(tmp_path / "b.bin", WORDS[:-1], vectors)
    with pytest.raises(ValueError, match="2-D"):
        save_word2vec_text(tmp_path / "c.txt", ["x"], np.zeros(3))
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("content,line,what", [
    ("2 3\nthe 1 2 3\ncat 1 2\n", 3, "expected 3 values"),
    ("2 3\nthe 1 2 3\ncat 1 2 x\n", 3, "non-numeric"),
    ("two three\nthe 1 2 3\n", 1, "header"),
    ("2\nthe 1 2 3\n", 1, "header"),
    ("3 3\nthe 1 2 3\ncat 1 2 3\n", 3, "header announced 3"),
    ("1 3\nthe 1 2 3\ncat 1 2 3\n", 3, "more vectors"),
])
def test_malformed_text_names_file_and_line(tmp_path, content, line, what):
    path = tmp_path / "broken.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=what) as err:
        load_word2vec(path)
    assert f"broken.txt:{line}:" in str(err.value)


def test_truncated_binary_names_file(tmp_path, vectors):
    path = tmp_path / "vec.bin"
    save_word2vec_binary(path, WORDS, vectors)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="vec.bin.*record 8.*ends early"):
        load_word2vec(path, binary=True)


def test_blank_trailing_line_is_tolerated(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("1 2\nthe 0.5 -1\n\n", encoding="utf-8")
    words, v = load_word2vec(path)
    assert words == ["the"] and v.tolist() == [[0.5, -1.0]]


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as f:
            f.write("half of it")
            raise RuntimeError("writer died")
    assert _listing(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path, vectors, monkeypatch):
    target = tmp_path / "vec.txt"
    target.write_text("old content", encoding="utf-8")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_word2vec_text(target, WORDS, vectors)
    assert target.read_text(encoding="utf-8") == "old content"
    assert _listing(tmp_path) == ["vec.txt"]


@pytest.mark.parametrize("save", [save_word2vec_text, save_word2vec_binary])
def test_save_failing_midway_leaves_nothing(tmp_path, vectors, monkeypatch, save):
    # Small chunks, and a file whose third write (header, chunk 1, chunk 2) fails.
    monkeypatch.setattr(export, "_CHUNK_ROWS", 2)
    monkeypatch.setattr(textformat, "PY_ROWS", 2)
    monkeypatch.setattr(textformat, "BLOCK_BYTES", 1)   # one row per block in C
    real_atomic_write = export.atomic_write
    writes = []

    class Flaky:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            writes.append(len(data))
            if len(writes) == 3:
                raise OSError("disk vanished")
            return self.f.write(data)

    @contextlib.contextmanager
    def flaky_atomic_write(path, mode):
        with real_atomic_write(path, mode) as f:
            assert _listing(tmp_path) != []  # the temporary file exists while writing
            yield Flaky(f)

    monkeypatch.setattr(export, "atomic_write", flaky_atomic_write)
    with pytest.raises(OSError, match="disk vanished"):
        save(tmp_path / "vec.out", WORDS, vectors)
    assert len(writes) == 3
    assert _listing(tmp_path) == []


def test_atomic_write_success_permissions(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target, "wb") as f:
        f.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert _listing(tmp_path) == ["out.bin"]


def test_gensim_reads_our_files(tmp_path, vectors):
    gensim_models = pytest.importorskip("gensim.models")
    for save, binary in ((save_word2vec_text, False), (save_word2vec_binary, True)):
        path = tmp_path / f"vec.{int(binary)}"
        save(path, WORDS, vectors)
        kv = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert list(kv.index_to_key) == WORDS
        np.testing.assert_allclose(kv.vectors, vectors, rtol=1e-6, atol=0)


def test_we_read_gensim_files(tmp_path, vectors):
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(WORDS, vectors)
    for binary in (False, True):
        path = tmp_path / f"gensim.{int(binary)}"
        kv.save_word2vec_format(str(path), binary=binary)
        words, loaded = load_word2vec(path)  # format sniffed
        assert words == WORDS
        np.testing.assert_allclose(loaded, vectors, rtol=1e-6, atol=0)
