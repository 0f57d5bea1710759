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


def _load_both(path, monkeypatch, **kw):
    """load_word2vec's answer (rows, or the error's text) with the C reader and with Python only."""
    answers = []
    for native in (True, False):
        with monkeypatch.context() as m:
            if not native:
                m.setattr(textformat, "_loaded", {"lib": NativeUnavailable("off for the test")})
            try:
                words, vectors = load_word2vec(path, binary=False, **kw)
                answers.append((words, vectors.view(np.uint32).tolist()))
            except ValueError as e:
                answers.append(str(e))
    return answers


FAST = ["%.9g", "%lf", "%.3e", "%+.2f", "%.15g"]   # what the C reader takes at moderate magnitudes


def _value_spellings(rng, k, spread=30, fmt=FAST + ["%r", "%.17g"]):
    """Values as writers spell them: '%.9g' (w2v), word2vec.c's '%lf', gensim's shortest float32,
    and Python's repr and '%.17g' (more digits than the C reader takes), at magnitudes 1e+-spread,
    and a few odd but valid spellings."""
    x = (rng.standard_normal(k) * 10.0 ** rng.integers(-spread, spread + 1, k)).astype(np.float32)
    out = [fmt[i % len(fmt)] % float(v) for i, v in enumerate(x.tolist())]
    out += [str(v) for v in x[:50]]   # numpy's shortest float32 spelling, as gensim writes
    out += ["0", "-0", "+.5", "5.", "0001.2500", "1E3", "1e-0", "00e5", "0.0000000000000000001234"]
    return out


@needs_c
@pytest.mark.parametrize("block", [37, 1 << 20])
def test_c_reader_reads_what_python_reads(tmp_path, monkeypatch, block):
    monkeypatch.setattr(textformat, "BLOCK_BYTES", block)
    rng = np.random.default_rng(block)
    values = _value_spellings(rng, 400)
    odd = ["inf", "nan", "1_0", "0x1p3", "1e400", "\u22121", "1.2.3", "e5", "-", "1e", "..5"]
    dim = 3
    lines = []
    for i in range(120):
        lead = " " * (i % 3)
        word = ["w%d" % i, "naïve%d" % i, "\u00a0x%d" % i, "tab\there%d" % i][i % 4]
        vals = [values[(3 * i + j) % len(values)] for j in range(dim)]
        sep = ["  ", " ", "\t", " \x0b "][i % 4]
        lines.append(lead + word + " " + sep.join(vals) + ["\n", "\r\n", " \n"][i % 3])
        if i % 17 == 0:
            lines.append(["\n", "  \t\n", "\x1c\n", "\u00a0\n"][i % 4])   # blank to Python's strip()
    good = "".join(lines)
    header = f"{sum(1 for ln in lines if ln.strip())} {dim}\n"
    f = tmp_path / "v.txt"
    f.write_text(header + good)
    both = _load_both(f, monkeypatch)
    assert both[0] == both[1] and isinstance(both[0], tuple) and len(both[0][0]) == 120
    assert _load_both(f, monkeypatch, limit=50)[0] == _load_both(f, monkeypatch, limit=50)[1]
    f.write_text(header + good.rstrip("\n"))   # no final newline
    assert _load_both(f, monkeypatch)[0] == both[0]
    rows = [k for k, ln in enumerate(lines) if ln.strip()]
    for i, bad in enumerate(odd):   # a last value the C reader leaves to Python, at various places
        at = rows[7 * i + 5]
        changed = lines[:at] + [lines[at].rstrip().rsplit(None, 1)[0] + " " + bad + "\n"] + lines[at + 1:]
        f.write_text(header + "".join(changed))
        got = _load_both(f, monkeypatch)
        assert got[0] == got[1], bad
    for case in ("w 1 2\n", "w 1 2 3 4\n", "w\n", "two words 1 2 3\n", "x 1 2 3\n" * 2):
        f.write_text(header + good + case)   # more rows than announced, or malformed ones
        got = _load_both(f, monkeypatch)
        assert isinstance(got[0], str) and got[0] == got[1], case
    f.write_bytes((header + good).encode() + b"bad\xff 1 2 3\n")
    got = _load_both(f, monkeypatch)
    assert isinstance(got[0], str) and "not valid UTF-8" in got[0] and got[0] == got[1]
    for limit in (50, 119):   # past the rows wanted, the bad line is never read
        got = _load_both(f, monkeypatch, limit=limit)
        assert isinstance(got[0], tuple) and got[0] == got[1]
    f.write_text(f"{len(lines) + 5} {dim}\n" + good)   # fewer rows than announced
    got = _load_both(f, monkeypatch)
    assert "file ends early" in got[0] and got[0] == got[1]


@needs_c
def test_c_reader_values_are_numpys(tmp_path, monkeypatch):
    rng = np.random.default_rng(11)
    values = _value_spellings(rng, 3000, spread=5, fmt=FAST)
    f = tmp_path / "v.txt"
    f.write_text(f"{len(values)} 1\n" + "".join(f"w{i} {v}\n" for i, v in enumerate(values)))
    words, vectors = load_word2vec(f)
    want = np.array([np.float32(float(v)) for v in values], dtype=np.float32)
    assert np.array_equal(vectors[:, 0].view(np.uint32), want.view(np.uint32))
    with open(f, "rb") as fh:
        fh.readline()
        parsed = list(textformat.read_blocks(fh, 1))
    assert parsed and all(p is not None for _, _, p in parsed)   # the C reader took every block
