"""The one-pass native text pipeline: identical to the two-pass Python reference on every input."""
import bz2
import fcntl
import gzip
import json
import logging
import random
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from w2v import native, pipeline, reader, scan
from w2v.config import build_config
from w2v.pipeline import prepare
from w2v.reader import CorpusError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sotu.txt.gz"


def _has_scanner():
    try:
        scan.load()
        return True
    except native.NativeUnavailable:
        return False


needs_scanner = pytest.mark.skipif(not _has_scanner(), reason="no C compiler: the Python path is the only one")

WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]


def _cfg(paths, **sections):
    data = {"corpus": {"paths": [str(p) for p in paths]}, "vocab": {"min_count": 1}}
    for key, value in sections.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    return build_config(data)


def _entry(cache: Path) -> dict:
    (meta,) = cache.glob("corpus-*.json")
    stem = meta.name[:-5]
    out = {s: (cache / (stem + s)).read_bytes() for s in (".ids", ".offsets", ".vocab")}
    m = json.loads(meta.read_text())
    out["meta"] = (m["raw_tokens"], m["tokens"], m["sentences"])
    return out


def _both(tmp_path, paths, threads=(1, 2, 3), **settings):
    """Prepare with the Python reference and with C at each thread count; all must be identical."""
    ref = tmp_path / "ref"
    prepare(_cfg(paths, **settings), ref, native=False)
    want = _entry(ref)
    for t in threads:
        got_dir = tmp_path / f"c{t}"
        p = prepare(_cfg(paths, corpus__read_threads=t, **settings), got_dir, native=True)
        got = _entry(got_dir)
        for key in want:
            assert got[key] == want[key], f"{key} differs with {t} threads ({p.threads} used)"
        shutil.rmtree(got_dir)
    shutil.rmtree(ref)
    return want


@needs_scanner
def test_sample_corpus_identical_plain_and_gzip(tmp_path):
    plain = tmp_path / "sotu.txt"
    plain.write_bytes(gzip.decompress(SAMPLE.read_bytes()))
    a = _both(tmp_path, [plain], threads=(1, 2), vocab__min_count=5)
    b = _both(tmp_path, [SAMPLE], threads=(1, 2), vocab__min_count=5)
    assert a == b
    assert a["meta"][0] > 1_000_000 and a[".vocab"].count(b"\n") > 5000


ADVERSARIAL = (
    "The CAT sat\r\non the\tmat\x0bToday\x0cnow\x1cfile\x1dgroup\x1erecord\x1funit\n"
    "\n\n  \t \r\n"
    "ÉCOLE école Straße STRASSE ΟΔΟΣ ΟΔΟΣα Σ ΣΣ İstanbul \u212a kelvin ǅ ǈ\n"
    "nbsp\u00a0split nel\u0085split ogham\u1680split en\u2002em\u2003thin\u2009hair\u200aline\u2028para\u2029"
    "narrow\u202fmath\u205fideo\u3000end zwsp\u200bkept\u180emongolian\n"
    "nul\x00inside del\x7f ctrl\x01\x02\n"
).encode("utf-8") + (
    b"bad\xff\xfe bytes \xc3 alone \xe2\x82 cut \xf0\x9f\x98 cut4 \xc0\x80 overlong \xed\xa0\x80 surrogate "
    b"\xef\xbf\xbd literal \x85 lone-continuation \xc2\x85real-nel \xe2\x80\xa8ls\n"
    b"caf\xc3\xa9 CAF\xc3\x89 caf\xc3\xa9\xff\n"
    b"no final newline \xce\xa3"
)


@needs_scanner
@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize("max_len", [1000, 3])
def test_adversarial_bytes_identical(tmp_path, monkeypatch, lowercase, max_len):
    # Tiny read chunks (Python) and blocks (C), so that tokens, UTF-8 sequences and whitespace
    # sequences are cut at every place and many tokens are longer than a chunk.
    monkeypatch.setattr(reader, "CHUNK_CHARS", 5)
    monkeypatch.setattr(pipeline, "BLOCK", 7)
    f = tmp_path / "adv.txt"
    f.write_bytes(ADVERSARIAL * 3)
    want = _both(tmp_path, [f], corpus__lowercase=lowercase, corpus__max_sentence_length=max_len)
    vocab = want[".vocab"].decode("utf-8").split("\n")
    words = {line.split(" ")[0] for line in vocab if line}
    assert ("école" in words and "ÉCOLE" not in words) if lowercase else "ÉCOLE" in words
    assert "nbsp" in words and "split" in words and "zwsp\u200bkept\u180emongolian" in words
    # min_count 2 drops words, so OOV dropping and emptied sentences are covered too
    _both(tmp_path, [f], threads=(1, 2), corpus__lowercase=lowercase, corpus__max_sentence_length=max_len,
          vocab__min_count=4)


def _random_text(rng: random.Random, n: int) -> bytes:
    pieces = ["a", "B", "é", "É", "Σ", "ς", "ß", "İ", "\u212a", "x" * 40, "Ab", "\ufffd",
              *WHITESPACE, "\n", "\n", " ", " ", "\r\n"]
    raw = [b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\x00", b"\xc2", b"\x80", b"\xa0"]
    out = []
    for _ in range(n):
        out.append(rng.choice(raw) if rng.random() < 0.15 else rng.choice(pieces).encode("utf-8"))
    return b"".join(out)


@needs_scanner
def test_random_bytes_identical(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_CHARS", 11)
    monkeypatch.setattr(pipeline, "BLOCK", 13)
    rng = random.Random(7)
    for case in range(25):
        files = []
        for i in range(rng.randint(1, 3)):
            f = tmp_path / "in" / f"{case}-{i}.txt"
            f.parent.mkdir(exist_ok=True)
            f.write_bytes(_random_text(rng, rng.randint(0, 400)))
            files.append(f)
        try:
            _both(tmp_path / str(case), files, threads=(1, 3), corpus__max_sentence_length=rng.choice([2, 5, 1000]),
                  corpus__lowercase=rng.random() < 0.7)
        except CorpusError as e:   # the reference found no words: C must say so too
            assert "contains no words" in str(e)
            with pytest.raises(CorpusError, match="contains no words"):
                prepare(_cfg(files), tmp_path / "c", native=True)
        shutil.rmtree(tmp_path / "in")


@needs_scanner
@pytest.mark.parametrize("block", [61, 1 << 16])
def test_word_lengths_around_the_fast_path_identical(tmp_path, monkeypatch, block):
    # Plain ASCII tokens of up to 16 bytes are hashed as two 64-bit words straight from the read
    # block and lowercased there; longer ones, and those near a block's end, are copied first.
    # Lengths 1-40 straddle both limits, and the bytes next to A-Z ('@', '[', '`', '{'), DEL and
    # control bytes (not whitespace) test the word-wise lowercasing and the token-end search.
    monkeypatch.setattr(pipeline, "BLOCK", block)
    rng = random.Random(11)
    alphabet = "abzAMZ@[`{09\x7f\x01\x1b"
    words = ["".join(rng.choice(alphabet) for _ in range(n)) for n in range(1, 41) for _ in range(4)]
    f = tmp_path / "lengths.txt"
    f.write_text("\n".join(" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(500)) + "\n")
    want = _both(tmp_path, [f], threads=(1, 2), vocab__min_count=1)
    lengths = {len(line.rsplit(" ", 1)[0]) for line in want[".vocab"].decode().splitlines()}
    assert {7, 8, 9, 15, 16, 17, 40} <= lengths
    _both(tmp_path, [f], threads=(1,), vocab__min_count=1, corpus__lowercase=False)


@needs_scanner
def test_gzip_members_padding_empty_and_truncated(tmp_path):
    # .gz is inflated by zlib directly (not gzip.GzipFile): several members, zero padding between
    # them, an empty member and an empty file must read as the reference reads them.
    rng = random.Random(5)
    words = [f"w{i}" for i in range(50)] + ["É", "straße"]
    text1, text2 = ("\n".join(" ".join(rng.choices(words, k=9)) for _ in range(3000)).encode() for _ in range(2))
    multi = tmp_path / "multi.txt.gz"
    multi.write_bytes(gzip.compress(text1) + b"\0" * 10 + gzip.compress(b"") + gzip.compress(b" " + text2))
    empty = tmp_path / "empty.txt.gz"
    empty.write_bytes(b"")
    plain = tmp_path / "plain.txt"
    plain.write_bytes(text1 + b" " + text2)
    assert _both(tmp_path, [multi, empty], threads=(1, 2)) == _both(tmp_path, [plain], threads=(1,))
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(multi.read_bytes()[:len(multi.read_bytes()) // 3])
    for use_native in (True, False):
        with pytest.raises(CorpusError, match=r"cut.txt.gz: cannot read past byte \d+ .*truncated or corrupt"):
            prepare(_cfg([cut]), tmp_path / f"cut{use_native}", native=use_native)


def test_lowercasing_never_creates_or_removes_whitespace():
    # Why lowercasing token by token (C, and the reference past a chunk cut) equals lowercasing the
    # whole text: no character's lowercase holds whitespace unless it is whitespace itself, and a
    # final sigma's context stops at whitespace.
    for c in range(0x110000):
        ch = chr(c)
        low = ch.lower()
        if ch.isspace():
            assert low == ch, hex(c)
        else:
            assert not any(x.isspace() for x in low), hex(c)
    for w in WHITESPACE:
        text = "AΣ" + w + "Σb" + w + "ΣΣ"
        assert text.lower() == w.join(t.lower() for t in text.split(w)), repr(w)


@needs_scanner
def test_folder_of_mixed_files_in_parallel_identical(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = random.Random(3)
    words = [f"w{i}" for i in range(300)]
    for i in range(7):
        text = "\n".join(" ".join(rng.choices(words, k=rng.randint(0, 30))) for _ in range(200)) + "\n"
        name = folder / f"part{i}.txt"
        if i % 3 == 1:
            with gzip.open(str(name) + ".gz", "wt") as f:
                f.write(text)
        elif i % 3 == 2:
            with bz2.open(str(name) + ".bz2", "wt") as f:
                f.write(text)
        else:
            name.write_text(text)
    _both(tmp_path, [folder], threads=(1, 2, 3, 5, 16), vocab__min_count=3, corpus__max_sentence_length=7)


def _zipf_corpus(path: Path, seed: int, n_tokens: int, n_words: int) -> None:
    rng = np.random.default_rng(seed)
    ids = np.minimum(rng.zipf(1.3, n_tokens), n_words)
    words = [f"w{i}" if i % 7 else f"W\u00c9{i}" for i in range(n_words + 1)]  # some non-ASCII case pairs
    words[5] = "wÉ7"   # its lowercase is the word of id 7's lowercase: two spellings, one word
    lines = []
    for start in range(0, n_tokens, 23):
        lines.append(" ".join(words[i] for i in ids[start:start + 23].tolist()))
    path.write_text("\n".join(lines) + "\n")


@needs_scanner
@pytest.mark.parametrize("block", [997, 1 << 16])
def test_one_gzip_file_in_segments_identical(tmp_path, monkeypatch, caplog, block):
    # A single .gz file is read by one thread, but cut into one scanner per thread at line ends
    # (so that their ids are remapped in parallel): counts, ids and sentences must be those of one
    # scanner, with a vocabulary counted, given, or pruned (which falls back to one scanner).
    monkeypatch.setattr(pipeline, "BLOCK", block)
    made = []
    real_run = pipeline._Run.run

    def spy(self):
        real_run(self)
        made.append(len(self.scanners))
    monkeypatch.setattr(pipeline._Run, "run", spy)
    f = tmp_path / "zipf.txt.gz"
    _zipf_corpus(tmp_path / "zipf.txt", 3, 60_000, 5000)
    f.write_bytes(gzip.compress((tmp_path / "zipf.txt").read_bytes()))
    (tmp_path / "zipf.txt").unlink()
    _both(tmp_path, [f], threads=(1, 2, 3), vocab__min_count=3, corpus__max_sentence_length=10)
    assert made == [1, 2, 3], made          # the reference's pass makes no _Run
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("w1 10\nw3 5\nwé7 4\nnotthere 1\n")
    _both(tmp_path, [f], threads=(2,), vocab__path=str(vocab))
    made.clear()
    with caplog.at_level(logging.INFO, logger="w2v"):
        _both(tmp_path, [f], threads=(2,), vocab__max_distinct_words=1000, vocab__min_count=2)
    assert made[:2] == [2, 1] and "counting again in one thread" in caplog.text


@needs_scanner
def test_pruning_identical_to_reduce_vocab(tmp_path, caplog):
    f = tmp_path / "zipf.txt"
    _zipf_corpus(f, 1, 60_000, 20_000)
    with caplog.at_level(logging.INFO, logger="w2v"):
        want = _both(tmp_path, [f], threads=(1, 2), vocab__max_distinct_words=1000, vocab__min_count=2)
    assert "counting again in one thread" in caplog.text and "second pass encodes" in caplog.text
    # and pruning really happened: the counts differ from the unpruned ones
    exact = _both(tmp_path, [f], threads=(2,), vocab__min_count=2)
    assert exact[".vocab"] != want[".vocab"] and len(exact[".vocab"]) > len(want[".vocab"])


@needs_scanner
def test_given_vocabulary_identical(tmp_path):
    f = tmp_path / "zipf.txt"
    _zipf_corpus(f, 2, 20_000, 3000)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("w1 10\nw3 5\nwé7 4\nnotthere 1\n")
    want = _both(tmp_path, [f], threads=(1, 2), vocab__path=str(vocab))
    assert want[".vocab"] == vocab.read_bytes() and want["meta"][1] > 0


@needs_scanner
def test_python_fallback_without_compiler(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("W2V_CACHE_DIR", str(tmp_path / "build"))
    scan.reset()
    try:
        with caplog.at_level(logging.INFO, logger="w2v"):
            p = prepare(_cfg([SAMPLE]), tmp_path / "cache")
        assert not p.native and "C tokenizer is unavailable" in caplog.text
        got = _entry(tmp_path / "cache")
    finally:
        monkeypatch.undo()
        scan.reset()
    prepare(_cfg([SAMPLE], corpus__read_threads=2), tmp_path / "c", native=True)
    assert _entry(tmp_path / "c") == got


def test_valid_cache_is_reused_without_reading(tmp_path, monkeypatch):
    f = tmp_path / "a.txt"
    f.write_text("a b c a\nb a\n")
    first = prepare(_cfg([f]), tmp_path / "cache")
    assert not first.reused

    def no_reading(*args, **kwargs):
        raise AssertionError("the text was read although the cache holds it")
    monkeypatch.setattr(reader, "open_binary", no_reading)
    again = prepare(_cfg([f]), tmp_path / "cache")
    assert again.reused and again.vocab.words == first.vocab.words
    assert np.array_equal(np.asarray(again.corpus.ids), np.asarray(first.corpus.ids))
    with pytest.raises(AssertionError, match="was read"):   # other settings: another entry
        prepare(_cfg([f], vocab__min_count=2), tmp_path / "cache")


@pytest.mark.parametrize("use_native", [True, False])
def test_file_changed_while_read_is_refused_and_nothing_cached(tmp_path, monkeypatch, use_native):
    if use_native and not _has_scanner():
        pytest.skip("no C compiler")
    f = tmp_path / "log.txt"
    f.write_text("one two three\n" * 100)
    real = reader.open_binary

    def appending(path):
        stream = real(path)
        with open(path, "a") as out:   # another process appends while the file is read
            out.write("four five\n")
        return stream
    monkeypatch.setattr(reader, "open_binary", appending)
    with pytest.raises(CorpusError, match="log.txt: the file changed .* while it was read; nothing was cached"):
        prepare(_cfg([f]), tmp_path / "cache", native=use_native)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".w2v-cache.lock"]


def test_stale_temporary_files_removed_only_when_no_process_owns_them(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("a b c\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / ".corpus-0123.ids.abcd.tmp"
    stale.write_bytes(b"killed")
    other = cache / ".checkpoint.pt.x.tmp"   # not the cache's: left alone
    other.write_bytes(b"x")
    with open(cache / ".w2v-cache.lock", "a") as held:   # a live encode holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        done = threading.Event()
        t = threading.Thread(target=lambda: (prepare(_cfg([f]), cache), done.set()))
        t.start()
        time.sleep(0.5)
        assert not done.is_set() and stale.exists()   # waits; the live process's files are kept
        fcntl.flock(held, fcntl.LOCK_UN)
    t.join(60)
    assert done.is_set() and not stale.exists() and other.exists()


def test_only_the_newest_cache_entries_are_kept(tmp_path, caplog):
    f = tmp_path / "a.txt"
    f.write_text("a b c a b a\n")
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="w2v"):
        for n in range(1, 6):
            prepare(_cfg([f], vocab__min_count=n if n < 4 else 1, corpus__max_sentence_length=n), cache)
            time.sleep(0.01)
    assert len(list(cache.glob("corpus-*.json"))) == pipeline.KEEP_ENTRIES
    assert len(list(cache.glob("corpus-*"))) == 4 * pipeline.KEEP_ENTRIES
    assert "old cache entries" in caplog.text
    # the newest one is there and valid
    assert prepare(_cfg([f], corpus__max_sentence_length=5), cache).reused


def _seconds(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


@pytest.mark.parametrize("use_native", [True, False])
def test_one_long_token_costs_linear_time(tmp_path, monkeypatch, use_native):
    if use_native and not _has_scanner():
        pytest.skip("no C compiler")
    monkeypatch.setattr(reader, "CHUNK_CHARS", 1 << 14)  # many chunks per token: quadratic carry shows
    monkeypatch.setattr(pipeline, "BLOCK", 1 << 14)
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_bytes(b"x" * 500_000 + b" y\n")
    big.write_bytes(b"x" * 5_000_000 + b" y\n")
    t_small = _seconds(lambda: prepare(_cfg([small]), tmp_path / "c1", native=use_native))
    t_big = _seconds(lambda: prepare(_cfg([big]), tmp_path / "c2", native=use_native))
    # 10x the bytes: linear ~10x; the old carry logic was ~100x. The bound allows 3x noise.
    assert t_big < 30 * max(t_small, 0.02), (t_small, t_big)
    p = prepare(_cfg([big]), tmp_path / "c2", native=use_native)
    assert p.reused and sorted(len(w) for w in p.vocab.words) == [1, 5_000_000]


def test_prepare_cli_then_training_reuses_the_cache(tmp_path, capsys):
    from w2v import prepare as prepare_cli
    from w2v import train as train_cli
    out = tmp_path / "out"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"corpus:\n  paths: [{SAMPLE}]\noutput:\n  dir: {out}\n"
                   "model:\n  dim: 8\ntrain:\n  epochs: 1\n  threads: 1\n")
    assert prepare_cli.main(["--config", str(cfg), "--set", "corpus.read_threads=2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "tokens: 1" in printed and "MB/s" in printed and "scan" in printed and "tokens/s" in printed
    vocab = (out / "vocab.txt").read_text()
    assert vocab.startswith("the ") and len(vocab.splitlines()) > 5000
    assert prepare_cli.main(["--config", str(cfg), "--quiet"]) == 0   # read_threads is not in the key
    assert "cache: reused" in capsys.readouterr().out
    assert train_cli.main(["--config", str(cfg), "--quiet"]) == 0
    assert "from the cache" in (out / "train.log").read_text()
    assert (out / "vocab.txt").read_text() == vocab


def test_prepare_cli_errors_exit_2(tmp_path, capsys):
    from w2v import prepare as prepare_cli
    assert prepare_cli.main(["--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such file or folder" in capsys.readouterr().err
    assert prepare_cli.main(["--corpus", str(SAMPLE), "--set", "corpus.read_threads=-1"]) == 2
    assert "corpus.read_threads" in capsys.readouterr().err
