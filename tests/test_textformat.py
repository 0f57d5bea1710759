"""The C text formatter prints every float32 as Python's '%.9g' does, and the files come out the same."""
import io

import numpy as np
import pytest

from w2v import textformat
from w2v.export import load_word2vec, save_word2vec_text
from w2v.native import NativeUnavailable

needs_c = pytest.mark.skipif(not textformat.available(), reason="no C compiler: the Python path is the only one")


def _bits(values):
    return np.array(values, dtype=np.uint32).view(np.float32)


def _hard_values() -> np.ndarray:
    """Zeros, non-finite values, subnormals, the 1e-20 switch to snprintf, ties at the ninth digit
    (1048576.125 has ten digits, the last a 5), nine nines rounding up, and the float32s on either
    side of every power of ten."""
    named = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1048576.125, 1048576.375, -2097152.25,
                      999999999.0, 1e9, 99999999.5, 9.9999999e-5, 1e-4, 1e-5, 1e-20, 1.0000001e-20,
                      9.999999e-21, 1.4e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 16777216.0,
                      123456789.0, 0.1, 5.0, 1e8, 2.5e-8, 0.5, 1.5, 2.5], dtype=np.float32)
    near = []
    for k in range(-45, 39):
        centre = int(np.array([np.float32(10.0 ** k)]).view(np.uint32)[0])
        near += range(max(centre - 4, 1), centre + 5)
    return np.concatenate([named, _bits(near), -_bits(near)])


@needs_c
def test_every_kind_of_value_as_python_prints_it():
    rng = np.random.default_rng(7)
    random_bits = _bits(rng.integers(0, 2 ** 32, 200_000, dtype=np.uint64))
    values = np.concatenate([_hard_values(), random_bits])
    wrong = [(x, textformat.format_value(x)) for x in values.tolist() if textformat.format_value(x) != "%.9g" % x]
    assert not wrong, wrong[:5]


def _write(words, vectors, **kw) -> bytes:
    f = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="\n")
    textformat.write_rows(f, words, vectors, **kw)
    f.flush()
    return f.buffer.getvalue()


@needs_c
@pytest.mark.parametrize("dim", [1, 7, 300])
@pytest.mark.parametrize("threads", [1, 3])
def test_native_lines_equal_python_lines(monkeypatch, dim, threads):
    rng = np.random.default_rng(dim)
    words = [f"w{i}" if i % 3 else f"naïve{i}日本" for i in range(50)]
    vectors = (rng.standard_normal((50, dim)) * 10.0 ** rng.integers(-6, 6, (50, 1))).astype(np.float32)
    vectors[3, 0] = -0.0
    want = _write(words, vectors, native=False)
    assert _write(words, vectors, native=True, threads=threads) == want
    monkeypatch.setattr(textformat, "BLOCK_BYTES", 200)   # many small blocks, more than in flight at once
    assert _write(words, vectors, native=True, threads=threads) == want
    assert want.count(b"\n") == 50 and want.startswith("naïve0日本 ".encode())


@needs_c
def test_saved_file_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(3)
    vectors = _bits(rng.integers(0, 2 ** 32, 64 * 5, dtype=np.uint64)).reshape(64, 5)
    vectors[~np.isfinite(vectors)] = 1.0
    words = [f"w{i}" for i in range(64)]
    save_word2vec_text(tmp_path / "v.txt", words, vectors)
    got_words, got = load_word2vec(tmp_path / "v.txt")
    assert got_words == words and np.array_equal(got.view(np.uint32), vectors.view(np.uint32))


def test_python_path_when_c_cannot_be_built(tmp_path, monkeypatch):
    words, vectors = ["a", "b"], np.array([[0.5, -0.25], [3.0, 1e10]], dtype=np.float32)
    monkeypatch.setattr(textformat, "_loaded", {"lib": NativeUnavailable("no compiler")})
    save_word2vec_text(tmp_path / "v.txt", words, vectors)
    assert (tmp_path / "v.txt").read_text() == "2 2\na 0.5 -0.25\nb 3 1e+10\n"
    with pytest.raises(NativeUnavailable):
        _write(words, vectors, native=True)
